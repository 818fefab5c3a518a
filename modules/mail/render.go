package mail

import (
	htmltemplate "html/template"
	"net/url"
	"strings"
	texttemplate "text/template"
	"time"
)

const activationSubject = "Activate your Cairn account"

// The activation email. Activation itself is POST /api/v1/users/activate
// {"token"}, which a mail client cannot make, so the link opens the page
// /activate?token=… that posts it, and the token is printed too for when
// links are not followed. html/template escapes the user's name and the
// link for their context.
var (
	activationText = texttemplate.Must(texttemplate.New("text").Parse(`Hello {{.Username}},

welcome to Cairn. To activate your account, open this link:

{{.Link}}

or enter this activation token where Cairn asks for it:

{{.Token}}
{{if .Expires}}
The link and the token work until {{.Expires}}.
{{end}}
If you did not sign up for Cairn, ignore this email; no account is
activated without the token.
`))
	activationHTML = htmltemplate.Must(htmltemplate.New("html").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Activate your Cairn account</title></head>
<body style="font-family: sans-serif; line-height: 1.5">
<p>Hello {{.Username}},</p>
<p>welcome to Cairn. To activate your account, open this link:</p>
<p><a href="{{.Link}}">Activate my account</a></p>
<p>or enter this activation token where Cairn asks for it:</p>
<p><code style="font-size: 1.1em">{{.Token}}</code></p>
{{if .Expires}}<p>The link and the token work until {{.Expires}}.</p>
{{end}}<p>If you did not sign up for Cairn, ignore this email; no account is activated without the token.</p>
</body></html>
`))
)

type activationView struct {
	Username string
	Link     string
	Token    string
	Expires  string
}

// activationLink is <public URL>/activate?token=<token>, keeping any path
// the public URL has (Cairn behind a prefix).
func activationLink(public *url.URL, token string) string {
	u := *public
	u.Path = strings.TrimSuffix(u.Path, "/") + "/activate"
	u.RawPath = ""
	u.RawQuery = url.Values{"token": {token}}.Encode()
	u.Fragment = ""
	return u.String()
}

// renderActivation builds the activation email for one request event.
func renderActivation(public *url.URL, host string, eventID string, r activationRequestedData) (Message, error) {
	v := activationView{Username: r.Username, Link: activationLink(public, r.Token), Token: r.Token}
	if !r.ExpiresAt.IsZero() {
		v.Expires = r.ExpiresAt.UTC().Format(time.RFC1123)
	}
	var text, html strings.Builder
	if err := activationText.Execute(&text, v); err != nil {
		return Message{}, err
	}
	if err := activationHTML.Execute(&html, v); err != nil {
		return Message{}, err
	}
	return Message{
		ID:      eventID + "@" + host,
		To:      r.Email,
		Subject: activationSubject,
		Text:    text.String(),
		HTML:    html.String(),
	}, nil
}
