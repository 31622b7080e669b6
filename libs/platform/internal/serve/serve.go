// Package serve runs a server's accept loop in the background for the platform's servers
// (admin, HTTP, gRPC): it listens before returning, so a taken port fails start-up, owns the
// goroutine that serves, and lets Stop wait until that goroutine has returned.
package serve

import (
	"context"
	"fmt"
	"net"
	"sync"

	"go.uber.org/zap"
)

// Loop is one server's accept loop. The zero value is ready to Start once.
type Loop struct {
	mu       sync.Mutex
	listener net.Listener
	served   chan struct{} // closed when serve has returned
}

// Start listens on addr, then runs serve on the listener in the background. serve returns nil
// when the server was stopped on purpose; any other error is logged, as a server that stops
// serving by itself has nobody else to tell.
func (l *Loop) Start(ctx context.Context, name, addr string, log *zap.Logger, serve func(net.Listener) error) error {
	ln, err := new(net.ListenConfig).Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	served := make(chan struct{})
	l.mu.Lock()
	l.listener, l.served = ln, served
	l.mu.Unlock()

	log.Info(name+" listening", zap.Stringer("addr", ln.Addr()))
	go func() {
		defer close(served)
		if err := serve(ln); err != nil {
			log.Error(name+" stopped serving", zap.Error(err))
		}
	}()
	return nil
}

// Stop runs stop, which must make serve return, and waits until it has. It does nothing when the
// loop never started.
func (l *Loop) Stop(stop func() error) error {
	l.mu.Lock()
	served := l.served
	l.mu.Unlock()
	if served == nil {
		return nil
	}
	err := stop()
	<-served
	return err
}

// Addr is the address the loop listens on, nil before Start. Tests listen on port 0 and ask.
func (l *Loop) Addr() net.Addr {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.listener == nil {
		return nil
	}
	return l.listener.Addr()
}
