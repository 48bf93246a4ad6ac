package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"go.temporal.io/sdk/temporal"
)

// Limits on a decision's fields.
const (
	MaxReasonLen = 2000
	MaxActorLen  = 100
	MaxSetFields = 50
)

// Refusal is the error a refused decision returns to its sender.
func Refusal(format string, args ...any) error {
	return temporal.NewApplicationErrorWithOptions(fmt.Sprintf(format, args...), string(ErrorDecisionRefused), temporal.ApplicationErrorOptions{NonRetryable: true})
}

// Complete checks the decision's payload on its own, before any state is consulted.
func (d Decision) Complete() error {
	var problems []string
	if !slices.Contains(Actions, d.Action) {
		problems = append(problems, fmt.Sprintf("action %q is not one of %s", d.Action, JoinActions(Actions)))
	}
	if err := CheckActor(d.Actor); err != nil {
		problems = append(problems, err.Error())
	}
	if strings.TrimSpace(d.Reason) == "" {
		problems = append(problems, "reason is required")
	} else if len(d.Reason) > MaxReasonLen {
		problems = append(problems, fmt.Sprintf("reason must be at most %d characters", MaxReasonLen))
	}
	if d.Action == ActionResolve && strings.TrimSpace(d.ExternalRef) == "" {
		problems = append(problems, "resolve needs externalRef: where the item was fixed by hand")
	}
	if d.Action == ActionReassign && strings.TrimSpace(d.Choice) == "" {
		problems = append(problems, "reassign needs choice: the team to hand the item to")
	}
	if d.Action == ActionAmend && len(d.Set) == 0 {
		problems = append(problems, "amend needs at least one field in set")
	}
	if d.Action != ActionAmend && len(d.Set) > 0 {
		problems = append(problems, "set is only for amend")
	}
	if len(d.Set) > MaxSetFields {
		problems = append(problems, fmt.Sprintf("set may change at most %d fields", MaxSetFields))
	}
	for _, s := range []string{d.Actor, d.Reason, d.Choice, d.ExternalRef} {
		if !utf8.ValidString(s) {
			problems = append(problems, "text must be valid UTF-8")
			break
		}
	}
	if len(problems) > 0 {
		return Refusal("incomplete decision: %s", strings.Join(problems, "; "))
	}
	return nil
}

// CheckActor says what is wrong with an actor's name, if anything.
func CheckActor(actor string) error {
	if strings.TrimSpace(actor) == "" {
		return errors.New("actor is required")
	}
	if len(actor) > MaxActorLen || strings.ContainsAny(actor, " \t\r\n") {
		return fmt.Errorf("actor must be one word of at most %d characters", MaxActorLen)
	}
	return nil
}

// JoinActions lists actions for a message.
func JoinActions(actions []Action) string {
	names := make([]string, len(actions))
	for i, a := range actions {
		names[i] = string(a)
	}
	return strings.Join(names, ", ")
}

// DecodeDecision reads a decision payload strictly: one JSON object with the
// fields of Decision and nothing else.
func DecodeDecision(raw []byte) (Decision, error) {
	var d Decision
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return d, Refusal("the signal is not a decision (%v); send {\"action\",\"actor\",\"reason\", ...}", err)
	}
	if dec.More() {
		return d, Refusal("the signal holds more than one JSON value")
	}
	return d, nil
}

// DecideCommand is the operator CLI command for an action on an item.
func DecideCommand(workflowID string, a Action) string {
	extra := ""
	switch a {
	case ActionAmend:
		extra = " --set field=value"
	case ActionResolve:
		extra = " --external-ref <where it was fixed>"
	}
	return fmt.Sprintf("signals %s '%s'%s --reason \"<why>\"", a, workflowID, extra)
}
