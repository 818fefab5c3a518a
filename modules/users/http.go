package users

import (
	"net/http"
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
	if err := web.BindJSON(c, &req); err != nil {
		return err
	}
	missing := map[string]string{}
	for name, v := range map[string]*string{"username": req.Username, "email": req.Email, "password": req.Password} {
		if v == nil {
			missing[name] = "is required"
		}
	}
	if len(missing) > 0 {
		return errs.Validation(missing)
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
