package logging

import (
	"go.uber.org/fx/fxevent"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// NewFxLogger returns an fx event logger writing to l. Wiring details (provides, invokes, hooks)
// go to debug; failures go to error; only "started" and "stopping" reach info, so a normal start
// is quiet and the interesting moments are still visible.
func NewFxLogger(l *zap.Logger) fxevent.Logger {
	l = l.WithOptions(zap.WithCaller(false)) // the caller would always be this adapter
	detail := &fxevent.ZapLogger{Logger: l.Named("fx")}
	detail.UseLogLevel(zapcore.DebugLevel)
	return &fxLogger{log: l, detail: detail}
}

type fxLogger struct {
	log    *zap.Logger
	detail *fxevent.ZapLogger
}

func (f *fxLogger) LogEvent(event fxevent.Event) {
	switch e := event.(type) {
	case *fxevent.Started:
		if e.Err == nil {
			f.log.Info("started")
			return
		}
	case *fxevent.Stopping:
		if e.Signal != nil {
			f.log.Info("stopping", zap.String("signal", e.Signal.String()))
			return
		}
		f.log.Info("stopping")
		return
	case *fxevent.Stopped:
		if e.Err == nil {
			f.log.Info("stopped")
			return
		}
	}
	f.detail.LogEvent(event)
}
