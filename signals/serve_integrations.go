package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/store"
)

// statusCount is how many of an integration's runs are in one status.
type statusCount struct {
	Status, Count, Meaning string
	// InboxURL lists them in the inbox, for the statuses that wait.
	InboxURL string
}

// exceptionCard is one exception of an integration's card.
type exceptionCard struct {
	Kind, Status, When, Decisions, Deciders, Choices, SLA, Deadline string
}

// integrationCard is an integration as `signals describe` prints it, with
// its counts.
type integrationCard struct {
	Name, Title, Description, Owner, Flow, WorkflowType, Reconciles string
	Counts                                                          []statusCount
	Exceptions                                                      []exceptionCard
	// Waiting sums up the items waiting for a decision (all teams');
	// nil when none waits.
	Waiting *waitingCard
	// LastReconcile is the last reconcile run's outcome, for an
	// integration that reconciles; "" when it never ran.
	LastReconcile *reconcileCard
}

// waitingCard is what waits in one integration: how many, how many past
// their SLA, and the item that has waited longest.
type waitingCard struct {
	Count, Overdue                       int
	OldestID, OldestURL, OldestKind, For string
	OldestOverdue                        bool
}

// reconcileCard is the last reconcile run of an integration, counted as
// `signals reconcile show` counts it.
type reconcileCard struct {
	ID                        int64
	Started, StartedBy, State string
	Compared, Requests        int64
	Classes                   []classCount
}

type classCount struct {
	Class, Meaning string
	Records        int64
}

// countWait bounds the count queries of the integrations page.
const countWait = 10 * time.Second

func (c *console) integrations(w http.ResponseWriter, r *http.Request, op *operator) {
	specs := api.Specs()
	cards := make([]integrationCard, len(specs))
	ctx, cancel := context.WithTimeout(r.Context(), countWait)
	defer cancel()
	var wg sync.WaitGroup
	sem := make(chan struct{}, consoleParallel)
	for i, s := range specs {
		card := integrationCard{Name: s.Name, Title: s.Title, Description: s.Description, Owner: s.Owner,
			Flow: fmt.Sprintf("%s %s %s", s.Source, arrow(s), s.Target), WorkflowType: s.WorkflowType, Reconciles: reconcileText(s),
			Counts: make([]statusCount, len(api.Statuses))}
		for _, e := range s.Exceptions {
			card.Exceptions = append(card.Exceptions, exceptionCard{Kind: string(e.Kind), Status: string(e.Status), When: e.When,
				Decisions: joinActions(e.Decisions), Deciders: decidersOf(s, e), Choices: choicesText(e), SLA: days(e.SLA), Deadline: deadlineText(e)})
		}
		for j, st := range api.Statuses {
			card.Counts[j] = statusCount{Status: string(st), Meaning: st.Meaning()}
			if st.Waiting() {
				card.Counts[j].InboxURL = "/?" + url.Values{"integration": {s.Name}}.Encode()
			}
		}
		cards[i] = card
		for j, st := range api.Statuses {
			query := fmt.Sprintf("%s = '%s' AND %s = '%s'", api.AttrIntegrationName.GetName(), s.Name, api.AttrIntegrationStatus.GetName(), st)
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				n, err := c.Backend.CountItems(ctx, query)
				if err != nil {
					cards[i].Counts[j].Count = "?"
					return
				}
				cards[i].Counts[j].Count = strconv.FormatInt(n, 10)
			})
		}
	}
	var problems []string
	now := c.Now()
	waiting, err := c.Backend.WaitingByIntegration(ctx, now)
	if err != nil {
		problems = append(problems, "The waiting items could not be read from PostgreSQL: "+err.Error())
	}
	for i, s := range specs {
		if w, ok := waiting[s.Name]; ok {
			cards[i].Waiting = waitingCardOf(w, now)
		}
		if s.Reconciles == "" {
			continue
		}
		rep, err := c.Backend.LatestReconcile(ctx, s.Name)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			problems = append(problems, fmt.Sprintf("The last reconcile run of %s could not be read: %v", s.Name, err))
		default:
			cards[i].LastReconcile = reconcileCardOf(rep)
		}
	}
	wg.Wait()
	for _, card := range cards {
		if slices.ContainsFunc(card.Counts, func(n statusCount) bool { return n.Count == "?" }) {
			problems = append(problems, "Temporal's visibility did not answer every count: those are shown as ?.")
			break
		}
	}
	v := view{Title: "Integrations", Nav: "integrations", Body: cards, Error: strings.Join(problems, "\n")}
	c.render(w, op, http.StatusOK, "integrations", v)
}

func waitingCardOf(w store.WaitingSummary, now time.Time) *waitingCard {
	o := w.Oldest
	sla := cmp.Or(o.SLA, specSLA(o.Integration, api.ExceptionKind(o.Kind)))
	return &waitingCard{Count: w.Waiting, Overdue: w.Overdue, OldestID: o.WorkflowID, OldestURL: itemPath(o.WorkflowID),
		OldestKind: o.Kind, For: humanDuration(now.Sub(o.Since)), OldestOverdue: sla > 0 && now.Sub(o.Since) > sla}
}

func reconcileCardOf(rep store.ReconcileReport) *reconcileCard {
	r := rep.Run
	card := &reconcileCard{ID: r.ID, Started: stamp(r.StartedAt), StartedBy: r.StartedBy, Compared: r.Compared, Requests: r.Requests,
		State: "finished " + stamp(ptrTime(r.FinishedAt))}
	if r.FinishedAt == nil {
		card.State = fmt.Sprintf("not finished (at %s): signals reconcile %s --now resumes it", r.Phase, r.Integration)
	}
	for _, class := range api.Classes {
		if n, ok := rep.Counts[class.Name]; ok && (n > 0 || class.Name == api.ClassInSync) {
			card.Classes = append(card.Classes, classCount{Class: class.Name, Meaning: class.Meaning, Records: n})
		}
	}
	return card
}

func ptrTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}
