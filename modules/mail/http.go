package mail

import (
	"net"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/web"
)

func (m *Module) routes(g *echo.Group) {
	web.Handle(g, http.MethodGet, "/mail/messages", web.Op{
		Summary:     "The mailbox: emails sent to an address, newest first",
		Description: "Only while mail stays in the process (CAIRN_SMTP_URL empty); 404 when it goes out over SMTP; 403 mailbox_loopback_only to a request that does not come from this machine.",
		Response:    messageListResponse{},
		Query:       []web.Param{{Name: "to", Description: "the recipient's address"}},
		Errors:      []int{http.StatusForbidden, http.StatusNotFound},
	}, m.handleMessageList)
}

type messageResponse struct {
	ID      string    `json:"id"`
	To      string    `json:"to"`
	Subject string    `json:"subject"`
	Text    string    `json:"text"`
	HTML    string    `json:"html"`
	SentAt  time.Time `json:"sent_at"`
	EventID string    `json:"event_id"`
}

type messageListResponse struct {
	Messages []messageResponse `json:"messages"`
}

// handleMessageList is the mailbox: GET /mail/messages?to=<address>, newest
// first. 404 when mail goes out over SMTP; 403 to a request that does not
// come from this machine.
func (m *Module) handleMessageList(c echo.Context) error {
	if m.transport == transportMailbox && !fromLoopback(c.Request().RemoteAddr) {
		return ErrMailboxLoopbackOnly
	}
	sent, err := m.Messages(c.Request().Context(), c.QueryParam("to"))
	if err != nil {
		return err
	}
	resp := messageListResponse{Messages: make([]messageResponse, 0, len(sent))}
	for _, s := range sent {
		resp.Messages = append(resp.Messages, messageResponse{
			ID: s.ID, To: s.To, Subject: s.Subject, Text: s.Text, HTML: s.HTML, SentAt: s.SentAt, EventID: s.EventID,
		})
	}
	return c.JSON(http.StatusOK, resp)
}

// fromLoopback reports whether a request's TCP peer (never a forwarded
// header, which the client writes) is on this machine.
func fromLoopback(remoteAddr string) bool {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
