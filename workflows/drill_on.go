//go:build deploydrill

package workflows

// deployDrill is set in this build: the deployment drill's "v2" (tests/deploy_test.go).
const deployDrill = true
