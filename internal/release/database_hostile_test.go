package release_test

import (
	"context"
	"database/sql"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lib/pq"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shipper-dev/shipper/internal/database"
	"github.com/shipper-dev/shipper/internal/release"
)

// TestAPreviewsOperatorsNeverRunAsTheAdmin: the code of a preview (its
// app or its migration, with the DATABASE_URL of its Secret) owns its
// database and its schema public, and may set the database's
// search_path. The admin's connection hands the clone's objects over on
// every deploy; an operator =(oid, regclass) in public is a closer match
// than pg_catalog's for the hand-over's "d.classid =
// 'pg_namespace'::regclass", so without a search path of pg_catalog alone
// the next deploy runs the preview's function as the admin, which here
// gives the preview's role CREATEROLE (on PostgreSQL 15, the reach of the
// admin: every non-superuser role, pg_read_all_data). Found by the hostile
// review of issue 28.
func TestAPreviewsOperatorsNeverRunAsTheAdmin(t *testing.T) {
	pg, admin := dbServer(t)
	ctx := context.Background()
	engine, err := database.Open(database.Config{URL: admin, Template: "tpl"})
	if err != nil {
		t.Fatal(err)
	}
	c := database.Commit{Name: "rev28hijack-0a1b2c3d", App: "rev28hijack", SHA: "0a1b2c3d", Project: "28"}
	t.Cleanup(func() { _, _ = engine.Drop(context.Background(), c) })
	env, err := engine.Ensure(ctx, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	role := pq.QuoteLiteral(pq.QuoteIdentifier(c.Name))
	// What the preview's code runs, as the preview's role.
	plant := `CREATE TABLE public.ran (who text); GRANT ALL ON public.ran TO PUBLIC;
CREATE FUNCTION public.eq_hijack(a oid, b regclass) RETURNS boolean LANGUAGE plpgsql AS $f$
BEGIN
	INSERT INTO public.ran VALUES (current_user::text);
	BEGIN EXECUTE 'ALTER ROLE ' || ` + role + ` || ' CREATEROLE'; EXCEPTION WHEN OTHERS THEN INSERT INTO public.ran VALUES (SQLERRM); END;
	RETURN a OPERATOR(pg_catalog.=) b::oid;
END $f$;
CREATE OPERATOR public.= (LEFTARG = oid, RIGHTARG = regclass, FUNCTION = public.eq_hijack);
ALTER DATABASE ` + pq.QuoteIdentifier(c.Name) + ` SET search_path = public, pg_catalog`
	if err := dbExec(pg.URL(env["PGUSER"], env["PGPASSWORD"], env["PGDATABASE"]), plant); err != nil {
		t.Fatalf("the preview's role planting its operator: %v", err)
	}
	if _, err := engine.Ensure(ctx, c, env); err != nil {
		t.Fatalf("re-deploy's Ensure: %v", err)
	}
	ran, _ := dbQuery(pg.URL(env["PGUSER"], env["PGPASSWORD"], env["PGDATABASE"]), "SELECT string_agg(DISTINCT who, ', ') FROM public.ran")
	if ran != "" {
		t.Errorf("the preview's operator ran during a re-deploy, as %q", ran)
	}
	got, err := dbQuery(pg.AdminURL("postgres"), "SELECT rolcreaterole::text FROM pg_roles WHERE rolname = "+pq.QuoteLiteral(c.Name))
	if err != nil {
		t.Fatal(err)
	}
	if got != "false" {
		t.Errorf("after a re-deploy, the preview's role %s has CREATEROLE %s: the admin ran the preview's operator", c.Name, got)
	}
}

// dbExec runs statements q at url.
func dbExec(url, q string) error {
	db, err := sql.Open("postgres", url)
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.Exec(q)
	return err
}

// TestProbeKilledPromoteMigrationStoppedByTheNextPromote: a promote
// --migrate of commit A killed during its migration leaves A's Job
// migrate-production running against production's database (until its
// deadline, the killed job's --timeout). A promote --migrate of another
// commit B must not run production's migration beside it: it stops A's
// Job first, as the next promote of A would.
func TestAKilledPromotesMigrationIsStoppedByTheNextPromote(t *testing.T) {
	f := newDeployFixture(t)
	nsA, nsB := f.app+"-"+shaA[:8], f.app+"-"+shaB[:8]
	f.deployReady(t, shaA)
	f.deployReady(t, shaB)
	simulate(t, f.cs, nsA, nsA, rolloutReady)
	simulate(t, f.cs, nsB, nsB, rolloutReady)
	var hangs, succeeds atomic.Int32
	hangs.Store(int32(jobHangs))
	succeeds.Store(int32(jobSucceeds))
	simulateJobs(t, f.cs, nsA, &hangs)
	simulateJobs(t, f.cs, nsB, &succeeds)
	migrate := func(p *release.Promote) {
		p.Migrate = `["/app/migrate", "up"]`
		p.Secrets, p.SecretPrefix = map[string]string{"DATABASE_URL": "postgres://prod:prod-password-0815@db.internal/prod"}, "K8S_SECRET_"
		p.DrainDelay = 0
	}
	promote := func(ctx context.Context, sha string) error {
		n, err := release.NewNames(f.app, sha)
		if err != nil {
			return err
		}
		p := release.NewPromote(f.cfg)
		p.Hosts = release.Hosts{Domain: "example.com"}
		migrate(p)
		_, err = p.Run(ctx, n)
		return err
	}
	// promote A, killed while its migration runs.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	done := make(chan error, 1)
	go func() { done <- promote(ctx, shaA) }()
	for {
		j, err := f.cs.BatchV1().Jobs(nsA).Get(context.Background(), "migrate-production", metav1.GetOptions{})
		if err == nil && j.Status.Active == 1 {
			t.Logf("A's migration runs, deadline %ds", *j.Spec.ActiveDeadlineSeconds)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err == nil {
		t.Fatal("the killed promote of A succeeded")
	}
	if err := promote(context.Background(), shaB); err != nil {
		t.Fatalf("promote B --migrate: %v", err)
	}
	j, err := f.cs.BatchV1().Jobs(nsA).Get(context.Background(), "migrate-production", metav1.GetOptions{})
	if err == nil && j.DeletionTimestamp == nil && j.Status.Active > 0 {
		t.Errorf("promote B --migrate migrated production while the killed promote A's migration (job %s/%s) still ran, and left it running", nsA, j.Name)
	}
}
