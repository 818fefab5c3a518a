package users

import (
	"errors"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/errs"
	"github.com/cairn-dev/cairn/web"
)

func (m *Module) routes(g *echo.Group) {
	web.Handle(g, http.MethodPost, "/users", web.Op{
		Summary:     "Sign up: create a pending account and send its activation email",
		Description: "Appends users.account_created.v1 and the internal users.activation_requested.v1.",
		Request:     signUpRequest{}, Response: userResponse{}, Status: http.StatusCreated,
		Errors: []int{http.StatusConflict},
	}, m.handleUserCreate)
	web.Handle(g, http.MethodPost, "/users/activate", web.Op{
		Summary: "Activate an account with the token from its activation email",
		Request: activateRequest{}, Response: activateResponse{},
	}, m.handleUserActivate)
	web.Handle(g, http.MethodPost, "/users/activation-emails", web.Op{
		Summary: "Send a new activation email to a pending account",
		Description: "Answers 202 whatever the address, so it reveals nothing about accounts; for a pending account the earlier links stop working. " +
			"Rate-limited per address: 429 with Retry-After.",
		Request: activationEmailRequest{}, Response: activationEmailResponse{}, Status: http.StatusAccepted,
		Errors: []int{http.StatusTooManyRequests},
	}, m.handleActivationEmailCreate)
	web.Handle(g, http.MethodGet, "/users/:id", web.Op{
		Summary: "Read a user", Response: userResponse{},
	}, m.handleUserGet)
}

type signUpRequest struct {
	Username *string `json:"username"`
	Email    *string `json:"email"`
	Password *string `json:"password"`
}

// userResponse never carries the password hash: User has none.
type userResponse struct {
	ID        string    `json:"id"`
	Username  string    `json:"username"`
	Email     string    `json:"email"`
	Status    string    `json:"status"`
	CreatedAt time.Time `json:"created_at"`
}

func toUserResponse(u User) userResponse {
	return userResponse{ID: u.ID, Username: u.Username, Email: u.Email, Status: u.Status, CreatedAt: u.CreatedAt}
}

func (m *Module) handleUserCreate(c echo.Context) error {
	var req signUpRequest
	bad := map[string]string{}
	if err := web.BindJSON(c, &req); err != nil {
		fields, ok := web.FieldErrors(err)
		if !ok {
			return err
		}
		maps.Copy(bad, fields)
	}
	given := map[string]*string{"username": req.Username, "email": req.Email, "password": req.Password}
	for name, v := range given {
		if v == nil && bad[name] == "" {
			bad[name] = "is required"
		}
	}
	if len(bad) > 0 {
		// Every bad field at once: what SignUp would say about the
		// fields that did arrive, beside what is wrong with the others.
		str := func(p *string) string {
			if p == nil {
				return ""
			}
			return strings.TrimSpace(*p)
		}
		password := ""
		if req.Password != nil {
			password = *req.Password
		}
		for name, msg := range validateSignUp(str(req.Username), str(req.Email), password) {
			if given[name] != nil && bad[name] == "" {
				bad[name] = msg
			}
		}
		return errs.Validation(bad)
	}
	u, err := m.SignUp(c.Request().Context(), *req.Username, *req.Email, *req.Password)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, toUserResponse(u))
}

func (m *Module) handleUserGet(c echo.Context) error {
	u, err := m.User(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toUserResponse(u))
}

type activateRequest struct {
	Token *string `json:"token"`
}

type activateResponse struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

func (m *Module) handleUserActivate(c echo.Context) error {
	var req activateRequest
	if err := web.BindJSON(c, &req); err != nil {
		return err
	}
	if req.Token == nil {
		return errs.Validation(map[string]string{"token": "is required"})
	}
	u, err := m.Activate(c.Request().Context(), *req.Token)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, activateResponse{ID: u.ID, Status: u.Status})
}

type activationEmailRequest struct {
	Email *string `json:"email"`
}

type activationEmailResponse struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

// handleActivationEmailCreate answers 202 with the same body whatever the
// address: whether an account has it is nobody's business but its owner's.
func (m *Module) handleActivationEmailCreate(c echo.Context) error {
	var req activationEmailRequest
	if err := web.BindJSON(c, &req); err != nil {
		return err
	}
	if req.Email == nil {
		return errs.Validation(map[string]string{"email": "is required"})
	}
	err := m.ResendActivation(c.Request().Context(), *req.Email)
	var limited *RateLimited
	if errors.As(err, &limited) {
		c.Response().Header().Set("Retry-After", strconv.Itoa(int(limited.RetryAfter/time.Second)))
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, activationEmailResponse{
		Status:  "accepted",
		Message: "if a pending account has this address, a new activation email is on its way; earlier links stop working",
	})
}
