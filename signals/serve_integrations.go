package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/signalbox-dev/signalbox/api"
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
	wg.Wait()
	v := view{Title: "Integrations", Nav: "integrations", Body: cards}
	for _, card := range cards {
		for _, n := range card.Counts {
			if n.Count == "?" {
				v.Error = "Temporal's visibility did not answer every count: those are shown as ?."
			}
		}
	}
	c.render(w, op, http.StatusOK, "integrations", v)
}
