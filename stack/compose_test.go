package stack

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.yaml.in/yaml/v3"

	"github.com/signalbox-dev/signalbox/api"
)

type composeFile struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Command     any               `yaml:"command"`
		Environment map[string]string `yaml:"environment"`
		Volumes     []string          `yaml:"volumes"`
		Ports       []string          `yaml:"ports"`
		Healthcheck *struct {
			Test []string `yaml:"test"`
		} `yaml:"healthcheck"`
	} `yaml:"services"`
}

// TestComposeMirrorsTheCluster keeps docker-compose.yml in step with the
// cluster `make cluster` runs: the same services from the same config, the
// same versions, the search attributes signalbox declares, and health checks.
func TestComposeMirrorsTheCluster(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "docker-compose.yml"))
	require.NoError(t, err)
	var c composeFile
	require.NoError(t, yaml.Unmarshal(raw, &c))
	server := strings.TrimPrefix(TemporalServerVersion, "v")

	for _, name := range Services {
		svc, ok := c.Services["temporal-"+name]
		require.True(t, ok, "docker-compose.yml has no temporal-%s", name)
		require.Equal(t, "temporalio/server:"+server, svc.Image)
		cmd := strings.Join(commandOf(svc.Command), " ")
		require.Contains(t, cmd, "--config etc/signalbox/temporal --env cluster")
		require.Contains(t, cmd, "start --service "+name)
		require.Contains(t, svc.Volumes, "./deploy/temporal:/etc/signalbox/temporal:ro", "temporal-%s runs deploy/temporal/cluster.yaml", name)
		base, err := strconv.Atoi(svc.Environment["TEMPORAL_PORT_BASE"])
		require.NoError(t, err)
		require.Equal(t, "temporal-frontend:"+strconv.Itoa(base+33), svc.Environment["TEMPORAL_FRONTEND_ADDR"], "the frontend port cluster.yaml derives")
	}
	require.Equal(t, []string{"7233:7233"}, c.Services["temporal-frontend"].Ports)
	require.Equal(t, "temporalio/admin-tools:"+server, c.Services["temporal-setup"].Image)
	require.Equal(t, "temporalio/admin-tools:"+server, c.Services["temporal-namespace"].Image)

	makefile, err := os.ReadFile(filepath.Join("..", "Makefile"))
	require.NoError(t, err)
	ui := regexp.MustCompile(`TEMPORAL_UI_VERSION\s*:=\s*v(\S+)`).FindSubmatch(makefile)
	require.NotNil(t, ui)
	require.Equal(t, "temporalio/ui:"+string(ui[1]), c.Services["temporal-ui"].Image, "the UI make cluster builds")
	require.Contains(t, string(makefile), "TEMPORAL_SERVER_VERSION := "+TemporalServerVersion)

	// The namespace job creates exactly signalbox's search attributes.
	created := map[string]string{}
	ns := strings.Join(commandOf(c.Services["temporal-namespace"].Command), " ")
	for _, m := range regexp.MustCompile(`--name (\w+) --type (\w+)`).FindAllStringSubmatch(ns, -1) {
		created[m[1]] = m[2]
	}
	want := map[string]string{}
	for name, typ := range api.SearchAttributes() {
		want[name] = map[enumspb.IndexedValueType]string{enumspb.INDEXED_VALUE_TYPE_KEYWORD: "Keyword", enumspb.INDEXED_VALUE_TYPE_DATETIME: "Datetime"}[typ]
	}
	require.Equal(t, want, created)

	for _, name := range []string{"worker", "intake", "sandbox"} {
		svc := c.Services[name]
		require.NotNil(t, svc.Healthcheck, "%s has a health check", name)
		require.True(t, slices.Contains(svc.Healthcheck.Test, "healthcheck"), "%s: %v", name, svc.Healthcheck.Test)
	}
	require.Equal(t, "temporal-frontend:7233", c.Services["worker"].Environment["TEMPORAL_ADDRESS"])

	// Where a compose CLI exists, it must accept the file.
	for _, cli := range [][]string{{"docker-compose", "config", "-q"}, {"docker", "compose", "config", "-q"}} {
		if _, err := exec.LookPath(cli[0]); err != nil {
			continue
		}
		cmd := exec.Command(cli[0], cli[1:]...)
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "unknown") {
			require.NoError(t, err, "%s: %s", strings.Join(cli, " "), out)
			break
		}
	}
}

func commandOf(v any) []string {
	switch c := v.(type) {
	case string:
		return []string{c}
	case []any:
		var out []string
		for _, s := range c {
			out = append(out, s.(string))
		}
		return out
	}
	return nil
}
