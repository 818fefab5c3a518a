package console

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// The console's session: after the operator gives the admin token on the
// login page, a cookie holding an expiry and its HMAC under a key derived
// from the token (so changing CAIRN_ADMIN_TOKEN ends every session). It is
// HttpOnly, SameSite=Strict and limited to /console; every form that
// changes something also carries a CSRF token derived from the session.
const (
	cookieName = "cairn_console"
	sessionTTL = 12 * time.Hour
)

type sessions struct{ key []byte }

func newSessions(token string) sessions {
	k := sha256.Sum256([]byte("cairn-console|" + token))
	return sessions{key: k[:]}
}

func (s sessions) mac(parts ...string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(strings.Join(parts, "|")))
	return hex.EncodeToString(m.Sum(nil))
}

// issue returns a new session cookie's value.
func (s sessions) issue(now time.Time) string {
	exp := strconv.FormatInt(now.Add(sessionTTL).Unix(), 10)
	return exp + "." + s.mac("session", exp)
}

// valid reports whether a cookie value is a live session.
func (s sessions) valid(v string, now time.Time) bool {
	exp, mac, ok := strings.Cut(v, ".")
	if !ok {
		return false
	}
	n, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || now.Unix() > n {
		return false
	}
	return hmac.Equal([]byte(mac), []byte(s.mac("session", exp)))
}

// csrf is the form token of a session.
func (s sessions) csrf(session string) string { return s.mac("csrf", session)[:32] }

func (s sessions) cookie(c echo.Context) string {
	ck, err := c.Cookie(cookieName)
	if err != nil {
		return ""
	}
	return ck.Value
}

// require sends a request without a live session to the login page (a
// page) or answers 401 (the live tail); a POST must carry the session's
// CSRF token.
func (con *Console) require(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		v := con.sess.cookie(c)
		if con.token == "" || !con.sess.valid(v, time.Now()) {
			if c.Request().Method == http.MethodGet && !strings.HasSuffix(c.Path(), "/tail") {
				return c.Redirect(http.StatusSeeOther, "/console/login?next="+url.QueryEscape(c.Request().URL.RequestURI()))
			}
			return echo.NewHTTPError(http.StatusUnauthorized, "log in to the console first")
		}
		if c.Request().Method == http.MethodPost {
			if subtle.ConstantTimeCompare([]byte(c.FormValue("csrf")), []byte(con.sess.csrf(v))) != 1 {
				return echo.NewHTTPError(http.StatusForbidden, "the form is stale: reload the page and try again")
			}
		}
		c.Set("csrf", con.sess.csrf(v))
		return next(c)
	}
}

func (con *Console) handleLoginPage(c echo.Context) error {
	return con.render(c, http.StatusOK, "login", loginPage{Next: safeNext(c.QueryParam("next")), Off: con.token == ""})
}

func (con *Console) handleLogin(c echo.Context) error {
	next := safeNext(c.FormValue("next"))
	if con.token == "" {
		return con.render(c, http.StatusForbidden, "login", loginPage{Off: true})
	}
	if subtle.ConstantTimeCompare([]byte(c.FormValue("token")), []byte(con.token)) != 1 {
		return con.render(c, http.StatusUnauthorized, "login", loginPage{Next: next, Failed: true})
	}
	c.SetCookie(&http.Cookie{Name: cookieName, Value: con.sess.issue(time.Now()), Path: "/console", HttpOnly: true,
		Secure: c.Request().TLS != nil, SameSite: http.SameSiteStrictMode, MaxAge: int(sessionTTL.Seconds())})
	return c.Redirect(http.StatusSeeOther, next)
}

func (con *Console) handleLogout(c echo.Context) error {
	c.SetCookie(&http.Cookie{Name: cookieName, Value: "", Path: "/console", HttpOnly: true, MaxAge: -1, SameSite: http.SameSiteStrictMode})
	return c.Redirect(http.StatusSeeOther, "/console/login")
}

// safeNext keeps the redirect after login inside the console.
func safeNext(next string) string {
	if strings.HasPrefix(next, "/console/") && !strings.HasPrefix(next, "/console//") && !strings.Contains(next, "\\") {
		return next
	}
	return "/console/"
}

type loginPage struct {
	Next        string
	Failed, Off bool
}
