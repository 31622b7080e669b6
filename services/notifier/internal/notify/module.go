package notify

import (
	"go.uber.org/fx"
	"go.uber.org/zap"
)

// Module provides the Notifier and its Store from Settings. A journaled store is loaded when
// the graph is built and closed on stop, after the consumer that adds to it has stopped.
var Module = fx.Module("notify",
	fx.Provide(
		newStore,
		fx.Annotate(
			func(s Settings, log *zap.Logger) (*SimulatedSender, error) {
				return NewSimulatedSender(log, s.FailureRate, nil)
			},
			fx.As(new(Sender)),
		),
		NewMetrics,
		NewNotifier,
	),
)

func newStore(lc fx.Lifecycle, s Settings, log *zap.Logger) (*Store, error) {
	if s.JournalPath == "" {
		return NewStore(s.RecentLimit)
	}
	store, err := OpenStore(s.JournalPath, s.RecentLimit)
	if err != nil {
		return nil, err
	}
	log.Named("notify").Info("recent notifications loaded from the journal",
		zap.String("path", s.JournalPath), zap.Int("notifications", store.Len()))
	lc.Append(fx.StopHook(store.Close))
	return store, nil
}
