package lake_test

import (
	"testing"
)

// The lineage of a sign-up is the whole chain: the sign-up's two events,
// the email the activation request caused, and the activation it led to.
func TestLineageOfASignUp(t *testing.T) {
	a := newLakeApp(t)
	id, _ := a.signUpAndActivate(1)
	a.signUpAndActivate(2) // another flow, which must not show
	a.settle()

	trail := a.admin("/lake/subjects/" + id + "/events")
	if trail.Status != 200 {
		t.Fatalf("audit trail: %d %s", trail.Status, trail.Raw)
	}
	want := []string{"users.account_created.v1", "users.activation_requested.v1", "mail.activation_email_sent.v1", "users.account_activated.v1"}
	evs := items(trail.Body["events"])
	if got := types(evs); !equal(got, want) {
		t.Fatalf("audit trail of %s: %v, want %v", id, got, want)
	}
	created, requested, sent, activated := evs[0], evs[1], evs[2], evs[3]

	r := a.admin("/lake/events/" + eventID(created) + "/lineage")
	if r.Status != 200 {
		t.Fatalf("lineage: %d %s", r.Status, r.Raw)
	}
	if got := types(items(r.Body["correlated"])); !equal(got, want) {
		t.Errorf("correlated with the sign-up: %v, want %v", got, want)
	}
	if c := items(r.Body["causes"]); len(c) != 0 {
		t.Errorf("the sign-up has causes %v: its cause is the request", types(c))
	}

	r = a.admin("/lake/events/" + eventID(requested) + "/lineage")
	if got := types(items(r.Body["effects"])); !equal(got, want[2:]) {
		t.Errorf("effects of the activation request: %v, want %v", got, want[2:])
	}
	for _, e := range items(r.Body["effects"]) {
		if cause := e["event"].(map[string]any)["causationid"]; cause != eventID(requested) {
			t.Errorf("effect %s has causation %v", eventID(e), cause)
		}
	}

	r = a.admin("/lake/events/" + eventID(activated) + "/lineage")
	if got := types(items(r.Body["causes"])); !equal(got, want[1:2]) {
		t.Errorf("causes of the activation: %v, want %v", got, want[1:2])
	}
	if e := r.Body["event"].(map[string]any); e["position"] != activated["position"] {
		t.Errorf("lineage event %v, want position %v", e["position"], activated["position"])
	}
	r = a.admin("/lake/events/" + eventID(sent) + "/lineage")
	if got := types(items(r.Body["causes"])); !equal(got, want[1:2]) {
		t.Errorf("causes of the email: %v, want %v", got, want[1:2])
	}
}

func items(v any) []map[string]any {
	list, _ := v.([]any)
	out := make([]map[string]any, 0, len(list))
	for _, x := range list {
		out = append(out, x.(map[string]any))
	}
	return out
}

func types(list []map[string]any) []string {
	out := []string{}
	for _, it := range list {
		out = append(out, it["event"].(map[string]any)["type"].(string))
	}
	return out
}

func eventID(it map[string]any) string { return it["event"].(map[string]any)["id"].(string) }

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
