// Package gate is the protection in front of a preview (issue 27): a small
// reverse proxy that runs beside the app in each protected pod (`shipper
// gate`, from the job image, as a sidecar) and lets a request through to
// the app only when it proves it may see it. It works with any router and
// any controller because it needs none of their features: the Service
// targets the gate's port, and the gate forwards to the app on loopback.
//
// Design:
//
//	Config        what a gate knows: the app and commit it guards, the
//	              app's password and key and the automation bypass secret
//	              (all from a Secret, never Helm values), the upstream
//	Gate          an http.Handler. A request passes with a valid cookie,
//	              the bypass header (X-Shipper-Bypass), or a share link's
//	              token (?shipper-share=, then a cookie and a redirect
//	              without it); anything else gets 401 and the login page.
//	              POST /_shipper/login checks the password and sets the
//	              cookie. The gate's own cookie and header never reach the
//	              app.
//	tokens        every credential the gate issues is "v1.<kind>.<expiry>.<mac>"
//	              with an HMAC-SHA256 over purpose, scope and expiry; the
//	              cookie key is derived from the app key and the password,
//	              so a new password or a rotated key ends every session, and
//	              a share link (ShareToken, `shipper share`) from the key
//	              alone, so it works without the password until it expires
//	oidc          sign-in with an OpenID Connect provider (GitLab), when
//	              Config.OIDC is set: a "Sign in with GitLab" button, the
//	              code flow with PKCE, state and nonce (go-oidc and
//	              x/oauth2), on the login host; members of the configured
//	              groups get the same session a password gives
//	limiter       login attempts limited per client and per app (token
//	              buckets, golang.org/x/time/rate); a client is the last
//	              X-Forwarded-For hop the router appended, else the peer
//
// Comparisons of secrets are constant-time (crypto/subtle on SHA-256
// digests, so lengths do not leak either). Cookies are host-only
// (`__Host-` prefix under https), HttpOnly, SameSite=Lax, Secure under
// https, with an expiry: no other host, and so no other tenant's app on the
// same base domain, ever receives one.
package gate
