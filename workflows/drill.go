//go:build !deploydrill

package workflows

// deployDrill is set only in builds with -tags deploydrill: the deployment
// drill's "v2", whose changed step (see LeadToCRM) shows how a change meets
// items that wait across a deploy.
const deployDrill = false
