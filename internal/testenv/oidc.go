package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"
)

// OIDCProvider is a running OpenID Connect provider on 127.0.0.1: zitadel's
// example OP (github.com/zitadel/oidc/v3, example/server/exampleop: its
// login page, and its op.Provider with discovery, authorize, token,
// userinfo and keys), in this process, over plain HTTP, with its in-memory
// storage, the users given and one confidential web client. Like GitLab,
// it puts a user's direct groups in the ID token (groups_direct) and every
// group, those through a parent group too, in userinfo (groups).
type OIDCProvider struct {
	// Issuer is the provider's URL, "http://127.0.0.1:<port>".
	Issuer string
	// ClientID and ClientSecret are the web client's, which accepts only
	// the redirect URIs StartOIDC was given.
	ClientID, ClientSecret string

	srv *http.Server
}

// OIDCUser is a user of the provider: the login form takes Name and
// Password.
type OIDCUser struct {
	Name, Password string
	// Groups are the paths of the groups the user is a direct member of;
	// Inherited those the user is in through a parent group.
	Groups, Inherited []string
}

// StartOIDC runs a provider with users and a client that may redirect to
// redirectURIs; Close stops it.
func StartOIDC(redirectURIs []string, users ...OIDCUser) (*OIDCProvider, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &OIDCProvider{Issuer: "http://" + l.Addr().String(), ClientID: "shipper-gate", ClientSecret: "client-secret-" + randomToken()}
	store := groupStorage{users: map[string]OIDCUser{}}
	for _, u := range users {
		store.users["id-"+u.Name] = u
	}
	store.Storage = storage.NewStorageWithClients(store, map[string]*storage.Client{
		p.ClientID: storage.WebClient(p.ClientID, p.ClientSecret, redirectURIs...),
	})
	// No logger: the example's request log goes to slog's default, which
	// the test binary's output shows only when a test fails.
	router := exampleop.SetupServer(p.Issuer, store, nil, false)
	p.srv = &http.Server{Handler: router, ReadHeaderTimeout: 10 * time.Second}
	go p.srv.Serve(l)
	// The listener was open before Serve: one request tells whether the
	// provider serves its discovery document.
	resp, err := http.Get(p.Issuer + "/.well-known/openid-configuration")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			err = errors.New(resp.Status)
		}
	}
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("OpenID Connect provider at %s: %w", p.Issuer, err)
	}
	return p, nil
}

// Close stops the provider.
func (p *OIDCProvider) Close() { p.srv.Close() }

// groupStorage is the example's storage with GitLab's group claims: it is
// also the user store the example's storage reads users from.
type groupStorage struct {
	*storage.Storage
	users map[string]OIDCUser // by ID
}

func (s groupStorage) GetUserByID(id string) *storage.User {
	u, ok := s.users[id]
	if !ok {
		return nil
	}
	return &storage.User{
		ID: id, Username: u.Name, Password: u.Password, FirstName: u.Name, LastName: "Tester",
		Email: u.Name + "@example.com", EmailVerified: true, PreferredLanguage: language.English,
	}
}

func (s groupStorage) GetUserByUsername(name string) *storage.User {
	for id, u := range s.users {
		if u.Name == name {
			return s.GetUserByID(id)
		}
	}
	return nil
}

func (s groupStorage) ExampleClientID() string { return storage.ServiceUserID }

// SetUserinfoFromRequest makes the ID token's claims: GitLab's has the
// username and groups_direct.
func (s groupStorage) SetUserinfoFromRequest(ctx context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	if err := s.Storage.SetUserinfoFromRequest(ctx, info, req, scopes); err != nil {
		return err
	}
	if u, ok := s.users[req.GetSubject()]; ok {
		info.PreferredUsername = u.Name
		info.AppendClaims("groups_direct", u.Groups)
	}
	return nil
}

// SetUserinfoFromToken makes userinfo's claims: groups and groups_direct.
func (s groupStorage) SetUserinfoFromToken(ctx context.Context, info *oidc.UserInfo, tokenID, subject, origin string) error {
	if err := s.Storage.SetUserinfoFromToken(ctx, info, tokenID, subject, origin); err != nil {
		return err
	}
	if u, ok := s.users[info.Subject]; ok {
		info.AppendClaims("groups", slices.Concat(u.Groups, u.Inherited))
		info.AppendClaims("groups_direct", u.Groups)
	}
	return nil
}

// loginFormID is the sign-in's ID in the provider's login form.
var loginFormID = regexp.MustCompile(`name="id" value="([^"]+)"`)

// SignIn fills in the provider's login form, form, as user with password
// (the example's login page: username, password and the sign-in's ID).
func (p *OIDCProvider) SignIn(b *WebClient, form Page, user, password string) Page {
	b.T.Helper()
	if !strings.HasPrefix(form.URL.String(), p.Issuer+"/") || !strings.Contains(form.Body, `name="username"`) {
		b.T.Fatalf("%s: %d, not the provider's login form: %q", form.URL, form.Status, form.Body)
	}
	return b.Post(p.Issuer+"/login/username", url.Values{"username": {user}, "password": {password}, "id": {form.Value(b.T, loginFormID)}})
}
