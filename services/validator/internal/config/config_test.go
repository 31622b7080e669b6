package config_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	platformconfig "github.com/backend-prep/backend-prep/libs/platform/config"
	"github.com/backend-prep/backend-prep/services/validator/internal/config"
)

func TestLoadDefaults(t *testing.T) {
	cfg, err := platformconfig.Load[config.Config]()
	require.NoError(t, err)

	assert.Equal(t, ":50051", cfg.GRPCAddr)
	assert.Empty(t, cfg.CatalogPath, "the built-in catalog")
	assert.Zero(t, cfg.Delay)
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    func(t *testing.T, cfg config.Config)
		wantErr string
	}{
		{
			name: "every variable set",
			env:  map[string]string{"GRPC_ADDR": "127.0.0.1:6000", "CATALOG_PATH": "catalog.json", "VALIDATOR_DELAY": "1500ms"},
			want: func(t *testing.T, cfg config.Config) {
				assert.Equal(t, "127.0.0.1:6000", cfg.GRPCAddr)
				assert.Equal(t, "catalog.json", cfg.CatalogPath)
				assert.Equal(t, 1500*time.Millisecond, cfg.Delay)
			},
		},
		{name: "delay of a minute", env: map[string]string{"VALIDATOR_DELAY": "1m"}, want: func(t *testing.T, cfg config.Config) {
			assert.Equal(t, time.Minute, cfg.Delay)
		}},
		{name: "address without a port", env: map[string]string{"GRPC_ADDR": "localhost"}, wantErr: "GRPC_ADDR: invalid address"},
		{name: "address with a bad port", env: map[string]string{"GRPC_ADDR": ":grpc"}, wantErr: "GRPC_ADDR: invalid address"},
		{name: "delay that is not a duration", env: map[string]string{"VALIDATOR_DELAY": "2"}, wantErr: "VALIDATOR_DELAY"},
		{name: "negative delay", env: map[string]string{"VALIDATOR_DELAY": "-1s"}, wantErr: "VALIDATOR_DELAY: -1s is outside [0s, 1m0s]"},
		{name: "delay above a minute", env: map[string]string{"VALIDATOR_DELAY": "61s"}, wantErr: "VALIDATOR_DELAY: 1m1s is outside [0s, 1m0s]"},
		{name: "a shared variable is checked too", env: map[string]string{"LOG_LEVEL": "loud"}, wantErr: "LOG_LEVEL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}

			cfg, err := platformconfig.Load[config.Config]()

			if tt.wantErr != "" {
				assert.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			tt.want(t, cfg)
		})
	}
}
