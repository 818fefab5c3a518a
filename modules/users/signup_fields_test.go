package users_test

import "testing"

// A sign-up with several bad fields hears about all of them in one answer:
// the one of the wrong type, the unknown one, the missing one and those
// whose content is wrong.
func TestSignUpReportsEveryBadField(t *testing.T) {
	a := newApp(t)
	r := a.API("POST", "/users", `{"username":7,"email":"ada.example.com","admin":true}`)
	want := map[string]string{
		"username": "must be a string",
		"email":    "must be an email address such as ada@example.com, without a display name",
		"admin":    "is not a known field",
		"password": "is required",
	}
	if r.Status != 400 || r.ErrorCode() != "validation_failed" {
		t.Fatalf("%d %s", r.Status, r.Raw)
	}
	for f, msg := range want {
		if got, _ := r.Field(f).(string); got != msg {
			t.Errorf("field %s: %q, want %q (%s)", f, got, msg, r.Raw)
		}
	}
	r = a.API("POST", "/users", `{"username":"","email":"a@b.c","password":"short"}`)
	if r.Status != 400 || r.Field("username") == nil || r.Field("password") == nil || r.Field("email") != nil {
		t.Fatalf("blank username and short password: %d %s", r.Status, r.Raw)
	}
}
