package httpserver_test

import (
	"net/http"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap/zaptest"

	"github.com/backend-prep/backend-prep/libs/platform/httpserver"
)

// greeter is how services write handlers: a type with dependencies and a Register method.
type greeter struct{ greeting string }

func newGreeter() *greeter { return &greeter{greeting: "hello"} }

func (g *greeter) Register(e *echo.Echo) {
	e.GET("/greet/:name", func(c echo.Context) error { return c.String(http.StatusOK, g.greeting+" "+c.Param("name")) })
}

func TestModule(t *testing.T) {
	var srv *httpserver.Server
	app := fxtest.New(t,
		fx.Supply(httpserver.Config{Addr: "127.0.0.1:0"}, zaptest.NewLogger(t)),
		fx.Provide(func() prometheus.Registerer { return prometheus.NewRegistry() }),
		fx.Provide(
			httpserver.AsRoutes(newGreeter),
			httpserver.AsRoutes(func() httpserver.RoutesFunc {
				return func(e *echo.Echo) {
					e.GET("/ping", func(c echo.Context) error { return c.String(http.StatusOK, "pong") })
				}
			}),
		),
		httpserver.Module,
		fx.Populate(&srv),
	)
	app.RequireStart()
	url := "http://" + srv.Addr().String()

	assert.Equal(t, "hello ada", do(t, http.MethodGet, url+"/greet/ada", nil).body)
	assert.Equal(t, "pong", do(t, http.MethodGet, url+"/ping", nil).body)

	app.RequireStop()
	res, err := http.Get(url + "/ping")
	if err == nil {
		res.Body.Close()
	}
	assert.Error(t, err, "stopped with the app")
}
