package bench

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// -api must name order-api: a Gateway answering for a route that is not attached is refused.
func TestIsOrderAPI(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Served-By", "order-api-7f9c")
		http.NotFound(w, nil)
	}))
	t.Cleanup(api.Close)
	proxy := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(proxy.Close)

	assert.NoError(t, isOrderAPI(strings.TrimPrefix(api.URL, "http://")))
	err := isOrderAPI(strings.TrimPrefix(proxy.URL, "http://"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "404 Not Found without a Served-By header")
	assert.ErrorContains(t, isOrderAPI("127.0.0.1:1"), "no answer")
}
