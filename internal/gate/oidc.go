package gate

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// The provider's side of a sign-in: its configuration, discovery, and
// what its answer says of who signed in. The browser's side, the HTTP
// handlers, is in oidcflow.go.

// Paths of the sign-in with a provider.
const (
	OIDCStartPath    = "/_shipper/oidc/start"
	OIDCCallbackPath = "/_shipper/oidc/callback"
)

// DefaultOIDCScopes are what the gate asks for: GitLab puts groups_direct
// in the ID token and groups in userinfo under openid alone; profile and
// email give the name the gate logs and shows.
var DefaultOIDCScopes = []string{oidc.ScopeOpenID, "profile", "email"}

const (
	// oidcTimeout bounds each exchange with the provider (discovery, the
	// code exchange, userinfo), so a provider that hangs never holds a
	// request, or the gate's start, for longer.
	oidcTimeout = 10 * time.Second
	// oidcRetry is how long a failed discovery is answered from memory
	// before the gate asks the provider again.
	oidcRetry = 5 * time.Second
)

// OIDC is how a gate signs people in with an OpenID Connect provider.
type OIDC struct {
	// Issuer is the provider's URL as its discovery document names it
	// (https://gitlab.example.com).
	Issuer string
	// ClientID and ClientSecret are the gate's application at the
	// provider. The secret goes to the provider's token endpoint only.
	ClientID, ClientSecret string
	// Name is the provider's name on the login page (default: the
	// issuer's host).
	Name string
	// Groups lets in the members of any of these groups, by the path the
	// provider's groups or groups_direct claim names (GitLab: acme/web).
	Groups []string
	// AllowAnyUser lets in everyone the provider signs in instead: on
	// gitlab.com that is anyone with an account, so it is never the
	// default and never together with Groups.
	AllowAnyUser bool
	// Scopes are requested from the provider (default DefaultOIDCScopes).
	Scopes []string
	// Client sends the gate's requests to the provider (default: a plain
	// client; each exchange is bounded by a 10 s timeout anyway).
	Client *http.Client
}

func (o *OIDC) check() error {
	u, err := url.Parse(o.Issuer)
	switch {
	case o.Issuer == "" || err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		return errors.New("gate: the OpenID Connect issuer must be an https URL")
	case o.ClientID == "" || o.ClientSecret == "":
		return errors.New("gate: OpenID Connect needs a client ID and secret")
	case len(o.Groups) == 0 && !o.AllowAnyUser:
		return errors.New("gate: OpenID Connect needs the groups to let in, or an explicit choice of any user")
	case len(o.Groups) > 0 && o.AllowAnyUser:
		return errors.New("gate: OpenID Connect takes groups or any user, not both")
	}
	return nil
}

// oidcLogin is a gate's provider: discovered on first use, not when the
// gate starts, so a provider that is down never stops the gate serving
// share links, passwords and the bypass.
type oidcLogin struct {
	cfg  OIDC
	now  func() time.Time
	used onceSet

	mu       sync.Mutex
	provider *oidc.Provider
	failed   time.Time
	err      error
}

func newOIDCLogin(cfg OIDC, now func() time.Time) *oidcLogin {
	if cfg.Name == "" {
		u, _ := url.Parse(cfg.Issuer)
		cfg.Name = u.Hostname()
	}
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = DefaultOIDCScopes
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{}
	}
	return &oidcLogin{cfg: cfg, now: now}
}

// context is ctx bounded by oidcTimeout, sending with the gate's client.
func (o *oidcLogin) context(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(oidc.ClientContext(ctx, o.cfg.Client), oidcTimeout)
}

// discover returns the provider, asking it for its discovery document
// the first time and again at most every oidcRetry after a failure.
func (o *oidcLogin) discover(ctx context.Context) (*oidc.Provider, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.provider != nil {
		return o.provider, nil
	}
	if o.err != nil && time.Since(o.failed) < oidcRetry {
		return nil, o.err
	}
	ctx, cancel := o.context(ctx)
	defer cancel()
	// go-oidc refuses a document whose issuer is not the one configured.
	p, err := oidc.NewProvider(ctx, o.cfg.Issuer)
	if err != nil {
		o.failed, o.err = time.Now(), fmt.Errorf("discovering OpenID Connect provider %q: %w", o.cfg.Issuer, err)
		return nil, o.err
	}
	o.provider, o.err = p, nil
	return p, nil
}

func (o *oidcLogin) oauth2(p *oidc.Provider, redirect string) *oauth2.Config {
	return &oauth2.Config{ClientID: o.cfg.ClientID, ClientSecret: o.cfg.ClientSecret, Endpoint: p.Endpoint(), RedirectURL: redirect, Scopes: o.cfg.Scopes}
}

// person is who the provider signed in, as far as the gate needs.
type person struct {
	Subject      string   `json:"sub"`
	Username     string   `json:"preferred_username"`
	Email        string   `json:"email"`
	Groups       []string `json:"groups"`
	GroupsDirect []string `json:"groups_direct"`
}

func (p person) String() string {
	for _, s := range []string{p.Username, p.Email} {
		if s != "" {
			return s
		}
	}
	return "subject " + p.Subject
}

func (p person) inAny(groups []string) bool {
	for _, g := range slices.Concat(p.Groups, p.GroupsDirect) {
		if slices.Contains(groups, g) {
			return true
		}
	}
	return false
}

// errNotMember is a sign-in that worked by someone no group lets in.
var errNotMember = errors.New("not a member of an allowed group")

// identify exchanges code for tokens and returns who signed in, or why
// they may not pass (errNotMember, or a refused token).
func (o *oidcLogin) identify(ctx context.Context, p *oidc.Provider, redirect, code string, st oidcState) (person, error) {
	tok, err := o.oauth2(p, redirect).Exchange(ctx, code, oauth2.VerifierOption(st.Verifier))
	if err != nil {
		return person{}, fmt.Errorf("exchanging the code: %w", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return person{}, errors.New("the provider's answer has no ID token")
	}
	id, err := p.Verifier(&oidc.Config{ClientID: o.cfg.ClientID, Now: o.now}).Verify(ctx, raw)
	if err != nil {
		return person{}, fmt.Errorf("checking the ID token: %w", err)
	}
	if id.Nonce == "" || !equal(id.Nonce, st.Nonce) {
		return person{}, errors.New("the ID token's nonce is not this sign-in's")
	}
	if id.AccessTokenHash != "" {
		if err := id.VerifyAccessToken(tok.AccessToken); err != nil {
			return person{}, fmt.Errorf("checking the access token: %w", err)
		}
	}
	var who person
	if err := id.Claims(&who); err != nil {
		who = person{Subject: id.Subject} // a claim of another shape: no groups
	}
	if o.cfg.AllowAnyUser || who.inAny(o.cfg.Groups) {
		return who, nil
	}
	// GitLab's ID token has groups_direct only; groups, with those a user
	// is in through a parent group, come from userinfo.
	info, err := p.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		return who, fmt.Errorf("reading userinfo: %w", err)
	}
	if info.Subject != id.Subject {
		return who, errors.New("userinfo is about another subject than the ID token")
	}
	var more person
	if err := info.Claims(&more); err != nil {
		return who, errNotMember
	}
	who.Username, who.Email = cmp.Or(who.Username, more.Username), cmp.Or(who.Email, more.Email)
	if more.inAny(o.cfg.Groups) {
		return who, nil
	}
	return who, errNotMember
}
