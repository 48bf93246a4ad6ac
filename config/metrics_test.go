package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestMetricsAreOffUnlessAnAddressIsSet(t *testing.T) {
	cleanEnv(t)
	var w Worker
	require.NoError(t, Load(&w))
	require.Empty(t, w.MetricsAddr)
	require.Equal(t, 30*time.Second, w.MetricsRefresh)
	var i Intake
	require.NoError(t, Load(&i))
	require.Empty(t, i.MetricsAddr)

	t.Setenv("SIGNALBOX_METRICS_ADDR", "0.0.0.0:9464")
	t.Setenv("SIGNALBOX_METRICS_REFRESH", "1m")
	require.NoError(t, Load(&w))
	require.Equal(t, "0.0.0.0:9464", w.MetricsAddr)
	require.Equal(t, time.Minute, w.MetricsRefresh)
	require.NoError(t, Load(&i))
	require.Equal(t, "0.0.0.0:9464", i.MetricsAddr)
}

func TestWorkerMetricsMayShareTheHealthAddress(t *testing.T) {
	cleanEnv(t)
	t.Setenv("SIGNALBOX_METRICS_ADDR", "127.0.0.1:9464")
	t.Setenv("SIGNALBOX_WORKER_HEALTH_ADDR", "127.0.0.1:9464")
	var w Worker
	require.NoError(t, Load(&w))
}

func TestBadMetricsSettingsNameTheirVariable(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"SIGNALBOX_METRICS_ADDR": "9464"}, `SIGNALBOX_METRICS_ADDR="9464" must be host:port`},
		{map[string]string{"SIGNALBOX_METRICS_REFRESH": "100ms"}, `SIGNALBOX_METRICS_REFRESH="100ms" must be at least 1s`},
		{map[string]string{"SIGNALBOX_METRICS_REFRESH": "often"}, `SIGNALBOX_METRICS_REFRESH`},
	} {
		cleanEnv(t)
		for k, v := range c.env {
			t.Setenv(k, v)
		}
		var w Worker
		require.ErrorContains(t, Load(&w), c.want)
	}
	cleanEnv(t)
	t.Setenv("SIGNALBOX_METRICS_ADDR", "127.0.0.1:8080")
	var i Intake
	require.ErrorContains(t, Load(&i), `SIGNALBOX_METRICS_ADDR="127.0.0.1:8080" must differ from SIGNALBOX_INTAKE_ADDR`)
	t.Setenv("SIGNALBOX_METRICS_ADDR", "localhost")
	require.ErrorContains(t, Load(&i), `SIGNALBOX_METRICS_ADDR="localhost" must be host:port`)
}
