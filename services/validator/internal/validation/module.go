package validation

import "go.uber.org/fx"

// Module provides the *Validator, built on the *catalog.Catalog in the graph.
var Module = fx.Module("validation",
	fx.Provide(New),
)
