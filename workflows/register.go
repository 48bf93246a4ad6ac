package workflows

import (
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/signalbox-dev/signalbox/activities"
)

// Register registers every integration's workflow on w, with the local
// activities those workflows run: the spine's, and any integration's own
// (PostgreSQL reads and writes, kept off the matching path).
func Register(w worker.Registry, spine *activities.Spine, locals ...any) {
	for _, s := range Specs() {
		w.RegisterWorkflowWithOptions(s.Workflow, workflow.RegisterOptions{Name: s.WorkflowType})
	}
	w.RegisterActivity(spine)
	for _, l := range locals {
		w.RegisterActivity(l)
	}
}
