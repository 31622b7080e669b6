package idempotency_test

import (
	"context"
	neturl "net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap"

	"github.com/backend-prep/backend-prep/libs/platform/admin"
	"github.com/backend-prep/backend-prep/services/order-api/internal/idempotency"
	"github.com/backend-prep/backend-prep/services/order-api/internal/idempotency/idempotencytest"
)

func moduleApp(t *testing.T, cfg idempotency.Config, store **idempotency.Store) *fxtest.App {
	t.Helper()
	return fxtest.New(t,
		fx.Supply(cfg, zap.NewNop()),
		idempotency.Module,
		fx.Populate(store),
		fx.Invoke(fx.Annotate(func([]admin.Check) {}, fx.ParamTags(`group:"readiness"`))),
	)
}

func TestTheModuleCreatesTheTableAtStartAndClosesThePoolAtStop(t *testing.T) {
	url := idempotencytest.URL(t)
	var store *idempotency.Store
	app := moduleApp(t, idempotency.Config{URL: url, Options: defaultOptions}, &store)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, app.Start(ctx))

	c, err := store.Claim(ctx, request("k-1", "order A"))
	require.NoError(t, err, "the table exists once the application started")
	require.NoError(t, c.Finish(ctx, idempotency.Accepted))
	require.NoError(t, store.Ping(ctx))

	require.NoError(t, app.Stop(ctx))
	assert.ErrorIs(t, store.Ping(ctx), idempotency.ErrUnavailable, "the pool is closed on stop")
}

func TestTheModuleFailsToStartWithoutADatabase(t *testing.T) {
	var store *idempotency.Store
	app := moduleApp(t, idempotency.Config{URL: "postgres://nobody:secret@127.0.0.1:1/none", Options: defaultOptions}, &store)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := app.Start(ctx)
	require.ErrorIs(t, err, idempotency.ErrUnavailable, "start fails, naming the store")
}

func TestThePasswordFileReplacesTheURLsPassword(t *testing.T) {
	u, err := neturl.Parse(idempotencytest.URL(t))
	require.NoError(t, err)
	password, _ := u.User.Password()
	u.User = neturl.UserPassword(u.User.Username(), "not-the-password")
	file := filepath.Join(t.TempDir(), "password")
	require.NoError(t, os.WriteFile(file, []byte(password+"\n"), 0o600)) // as a Secret's file may end

	ping := func(cfg idempotency.Config) error {
		pool, err := idempotency.NewPool(cfg)
		require.NoError(t, err)
		defer pool.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return pool.Ping(ctx)
	}
	require.Error(t, ping(idempotency.Config{URL: u.String()}), "the URL's own password is wrong")
	require.NoError(t, ping(idempotency.Config{URL: u.String(), PasswordFile: file}))

	_, err = idempotency.NewPool(idempotency.Config{URL: u.String(), PasswordFile: filepath.Join(t.TempDir(), "missing")})
	require.ErrorContains(t, err, "POSTGRES_PASSWORD_FILE")
}
