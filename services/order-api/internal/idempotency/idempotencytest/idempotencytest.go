// Package idempotencytest gives tests a real PostgreSQL database of their own: a fresh schema
// on the server brokertest.PostgresURL names, dropped when the test ends.
package idempotencytest

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/backend-prep/backend-prep/libs/brokertest"
)

// URL returns a libpq URL whose connections see only a new, empty schema: its search_path is
// that schema, so the store's tables are created there. Every URL it returns names another
// schema; tests that share one pass the same URL around.
func URL(t testing.TB) string {
	t.Helper()
	base := brokertest.PostgresURL(t)
	schema := "test_" + time.Now().UTC().Format("20060102150405") + "_" + suffix(t)
	exec(t, base, `CREATE SCHEMA `+pgx.Identifier{schema}.Sanitize())
	t.Cleanup(func() { exec(t, base, `DROP SCHEMA `+pgx.Identifier{schema}.Sanitize()+` CASCADE`) })

	u, err := url.Parse(base)
	require.NoError(t, err, "POSTGRES_URL is a URL")
	q := u.Query()
	q.Set("search_path", schema) // pgx sends unknown parameters as run-time settings
	u.RawQuery = q.Encode()
	return u.String()
}

func exec(t testing.TB, connString, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, connString)
	require.NoError(t, err)
	defer func() { _ = conn.Close(context.Background()) }()
	_, err = conn.Exec(ctx, sql)
	require.NoError(t, err, sql)
}

func suffix(t testing.TB) string {
	// UniqueName ends with 8 random hex digits.
	name := brokertest.UniqueName(t, "s")
	return name[len(name)-8:]
}
