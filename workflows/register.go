package workflows

import (
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/signalbox-dev/signalbox/activities"
)

// Register registers every integration's workflow on w, with the spine's local
// activities that those workflows run.
func Register(w worker.Registry, spine *activities.Spine) {
	for _, s := range Specs() {
		w.RegisterWorkflowWithOptions(s.Workflow, workflow.RegisterOptions{Name: s.WorkflowType})
	}
	w.RegisterActivity(spine)
}
