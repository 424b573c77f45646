// Package console is the finance and audit console that orderd serves under /console/:
// server-rendered pages (html/template, assets embedded, no script, nothing loaded from
// elsewhere) over the read models and the log, in Italian and English.
package console

import (
	"crypto/ed25519"
	"embed"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/einvoice/spaceorders/domain"
	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/handlers/tokens"
	"github.com/einvoice/spaceorders/projections"
)

// Prefix is where the console is served.
const Prefix = "/console/"

// Cookies of the console. The token cookie is HttpOnly (no script can read it) and
// SameSite=Strict (no other site's page can make the browser send it), and scoped to the
// console's path, so the API never accepts it in place of a bearer token.
const (
	tokenCookie = "console_token"
	langCookie  = "console_lang"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Options configure the console.
type Options struct {
	// Auth verifies the tokens signed in with, the same as the API's. Required.
	Auth *tokens.Verifier
	// Store is the log the timelines and the verification read. Required.
	Store eventstore.Store
	// Projections are the read models the pages show. Required.
	Projections *projections.Runner
	// Catalogue names the payment methods of the filters. Default: the embedded one.
	Catalogue *domain.Catalogue
	// CheckpointKeys are the public keys signed checkpoints are verified with: the data
	// folder's, never one read from the log. Nil: the checkpoints are shown unchecked.
	CheckpointKeys func() ([]ed25519.PublicKey, error)
	// Clock is "now" (ages). Default time.Now.
	Clock func() time.Time
	// Logger receives the failures the pages answer only a short message for.
	Logger *zap.Logger
	// VerifyTimeout bounds a verification of the whole log. Default 2 min.
	VerifyTimeout time.Duration
}

// Console serves the pages.
type Console struct {
	opts  Options
	log   *zap.Logger
	pages map[string]*template.Template
	mux   *http.ServeMux
}

// Roles that may use the console, and what each page allows.
var (
	consoleRoles = []tokens.Role{tokens.RoleFinance, tokens.RoleAuditor, tokens.RoleOperator}
	readers      = []tokens.Role{tokens.RoleFinance, tokens.RoleAuditor}
	modelReaders = []tokens.Role{tokens.RoleFinance, tokens.RoleAuditor, tokens.RoleOperator}
	rebuilders   = []tokens.Role{tokens.RoleOperator}
)

// New builds the console.
func New(opts Options) (*Console, error) {
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Catalogue == nil {
		opts.Catalogue = domain.DefaultCatalogue()
	}
	if opts.VerifyTimeout <= 0 {
		opts.VerifyTimeout = 2 * time.Minute
	}
	c := &Console{opts: opts, log: opts.Logger, pages: map[string]*template.Template{}, mux: http.NewServeMux()}
	for _, name := range []string{"signin", "message", "pending", "timeline", "models", "log"} {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, err
		}
		c.pages[name] = t
	}
	static, _ := fs.Sub(staticFS, "static")
	c.mux.Handle("GET "+Prefix+"static/", http.StripPrefix(Prefix+"static/", http.FileServerFS(static)))
	c.mux.HandleFunc("GET "+Prefix+"{$}", c.home)
	c.mux.HandleFunc("GET "+Prefix+"login", c.signInPage)
	c.mux.HandleFunc("POST "+Prefix+"login", c.signIn)
	c.mux.HandleFunc("POST "+Prefix+"logout", c.signOut)
	c.mux.HandleFunc("GET "+Prefix+"pending", c.page(readers, c.pending))
	c.mux.HandleFunc("GET "+Prefix+"pending.csv", c.page(readers, c.pendingCSV))
	c.mux.HandleFunc("GET "+Prefix+"timeline", c.page(readers, c.timeline))
	c.mux.HandleFunc("GET "+Prefix+"models", c.page(modelReaders, c.models))
	c.mux.HandleFunc("POST "+Prefix+"models/{name}/rebuild", c.page(rebuilders, c.rebuild))
	c.mux.HandleFunc("GET "+Prefix+"log", c.page(readers, c.logPage))
	c.mux.HandleFunc(Prefix, func(w http.ResponseWriter, r *http.Request) {
		c.message(w, r, nil, http.StatusNotFound, "notFound")
	})
	return c, nil
}

// ServeHTTP serves the console's pages.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// No script, no frame, nothing from elsewhere: the pages need only their own stylesheet.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin") // a sign-in link's token never leaves in a Referer
	h.Set("Cache-Control", "no-store")
	if l := r.URL.Query().Get("lang"); known(l) {
		http.SetCookie(w, &http.Cookie{Name: langCookie, Value: l, Path: Prefix, SameSite: http.SameSiteStrictMode,
			MaxAge: 365 * 24 * 3600, Secure: r.TLS != nil})
	}
	c.mux.ServeHTTP(w, r)
}

// view is what every page's template gets.
type view struct {
	Lang  string
	User  *tokens.Principal
	Nav   []navItem
	Path  string // the page, for the language links
	Query url.Values
	Title string
	Page  any
}

type navItem struct {
	Key, Href string
	Current   bool
}

// T translates a key into the page's language.
func (v view) T(key string) string { return translate(v.Lang, key) }

// Euros formats cents in the page's language.
func (v view) Euros(cents int64) string { return euros(v.Lang, cents) }

// LangHref is the current page in another language.
func (v view) LangHref(l string) string {
	q := url.Values{}
	for k, vs := range v.Query {
		if k != "lang" {
			q[k] = vs
		}
	}
	q.Set("lang", l)
	return v.Path + "?" + q.Encode()
}

var funcs = template.FuncMap{
	"when":  when,
	"short": func(s string) string { return shortHash(s) },
}

func shortHash(s string) string {
	if len(s) > 12 {
		return s[:12] + "…"
	}
	return s
}

func (c *Console) newView(r *http.Request, p *tokens.Principal, titleKey string, page any) view {
	l := lang(r)
	v := view{Lang: l, User: p, Path: r.URL.Path, Query: r.URL.Query(), Title: translate(l, titleKey), Page: page}
	if p != nil {
		for _, n := range []struct {
			key, href string
			roles     []tokens.Role
		}{
			{"nav.pending", Prefix + "pending", readers},
			{"nav.timeline", Prefix + "timeline", readers},
			{"nav.models", Prefix + "models", modelReaders},
			{"nav.log", Prefix + "log", readers},
		} {
			if slices.Contains(n.roles, p.Role) {
				v.Nav = append(v.Nav, navItem{Key: n.key, Href: n.href, Current: r.URL.Path == n.href})
			}
		}
	}
	return v
}

func (c *Console) render(w http.ResponseWriter, status int, name string, v view) {
	var b strings.Builder
	if err := c.pages[name].Execute(&b, v); err != nil {
		c.log.Error("console: page failed", zap.String("page", name), zap.Error(err))
		http.Error(w, "the page could not be drawn", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

// message answers a page with one message (a refusal, a page not found).
func (c *Console) message(w http.ResponseWriter, r *http.Request, p *tokens.Principal, status int, key string) {
	c.render(w, status, "message", c.newView(r, p, key, translate(lang(r), key)))
}

// principal is the signed-in caller, from the token cookie; false when there is none or
// it no longer verifies (expired).
func (c *Console) principal(r *http.Request) (tokens.Principal, bool) {
	ck, err := r.Cookie(tokenCookie)
	if err != nil || ck.Value == "" {
		return tokens.Principal{}, false
	}
	p, err := c.opts.Auth.Verify(ck.Value)
	if err != nil || !slices.Contains(consoleRoles, p.Role) {
		return tokens.Principal{}, false
	}
	return p, true
}

type pageFunc func(w http.ResponseWriter, r *http.Request, p tokens.Principal)

// page lets the roles in; anyone else signs in (401) or is refused (403).
func (c *Console) page(roles []tokens.Role, serve pageFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := c.principal(r)
		if !ok {
			c.renderSignIn(w, r, http.StatusUnauthorized, "signIn.needed")
			return
		}
		if !slices.Contains(roles, p.Role) {
			c.message(w, r, &p, http.StatusForbidden, "forbidden")
			return
		}
		if r.Method == http.MethodPost && !sameOrigin(r) {
			c.message(w, r, &p, http.StatusForbidden, "forbidden")
			return
		}
		serve(w, r, p)
	}
}

// sameOrigin: a form posted from the console's own pages. SameSite=Strict already keeps
// the cookie off other sites' requests; this also refuses a post a browser marks as
// cross-site, or whose Origin is another. A client that is not a browser sends neither.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "same-origin" || site == "none"
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}

func (c *Console) home(w http.ResponseWriter, r *http.Request) {
	p, ok := c.principal(r)
	if !ok {
		c.renderSignIn(w, r, http.StatusOK, "")
		return
	}
	to := Prefix + "models"
	if slices.Contains(readers, p.Role) {
		to = Prefix + "pending"
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

type signInPage struct{ Problem string }

func (c *Console) renderSignIn(w http.ResponseWriter, r *http.Request, status int, problemKey string) {
	pg := signInPage{}
	if problemKey != "" {
		pg.Problem = translate(lang(r), problemKey)
	}
	c.render(w, status, "signin", c.newView(r, nil, "signIn", pg))
}

// signInPage shows the form, or signs in with a link's ?token=.
func (c *Console) signInPage(w http.ResponseWriter, r *http.Request) {
	if tok := r.URL.Query().Get("token"); tok != "" {
		c.start(w, r, tok)
		return
	}
	c.renderSignIn(w, r, http.StatusOK, "")
}

func (c *Console) signIn(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if !sameOrigin(r) {
		c.renderSignIn(w, r, http.StatusForbidden, "signIn.bad")
		return
	}
	c.start(w, r, strings.TrimSpace(r.PostFormValue("token")))
}

// start checks a token and keeps it in the cookie; the redirect drops a link's token
// from the address bar.
func (c *Console) start(w http.ResponseWriter, r *http.Request, tok string) {
	p, err := c.opts.Auth.Verify(tok)
	switch {
	case err != nil:
		c.renderSignIn(w, r, http.StatusUnauthorized, "signIn.bad")
		return
	case !slices.Contains(consoleRoles, p.Role):
		c.log.Info("console: sign-in refused", zap.String("role", string(p.Role)), zap.String("subject", p.Subject))
		c.renderSignIn(w, r, http.StatusForbidden, "signIn.role")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: tokenCookie, Value: tok, Path: Prefix, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	c.log.Info("console: signed in", zap.String("role", string(p.Role)), zap.String("subject", p.Subject))
	http.Redirect(w, r, Prefix, http.StatusSeeOther)
}

func (c *Console) signOut(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: tokenCookie, Value: "", Path: Prefix, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, MaxAge: -1, Secure: r.TLS != nil})
	http.Redirect(w, r, Prefix, http.StatusSeeOther)
}
