package consume

import (
	"context"
	"errors"
	"fmt"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.uber.org/zap"

	"github.com/backend-prep/backend-prep/libs/rabbitmq"
)

// DeclareTopology declares the exchange of s.SourceTopology when the connection's user may, then
// s.Topology. Both are declared again after every reconnect (the one the broker refused, not).
//
// The notifier's own RabbitMQ user may bind to the exchange but not declare it (declaring needs
// the configure permission, which would also allow deleting it): the broker refuses with
// ACCESS_REFUSED, and the exchange must then exist already. An administrator, as the tests use,
// declares it, so that the notifier may start before order-api on a broker of its own.
func DeclareTopology(ctx context.Context, conn *rabbitmq.Connection, s Settings, log *zap.Logger) error {
	var amqpErr *amqp.Error
	err := conn.Declare(ctx, s.SourceTopology())
	switch {
	case err == nil:
	case errors.As(err, &amqpErr) && amqpErr.Code == amqp.AccessRefused:
		log.Info("this RabbitMQ user may not declare the exchange it consumes from; binding to it as it is",
			zap.String("exchange", s.Exchange))
	default:
		return err
	}
	if err := conn.Declare(ctx, s.Topology()); err != nil {
		if errors.As(err, &amqpErr) && amqpErr.Code == amqp.NotFound {
			return fmt.Errorf("%w (the exchange %q must exist before the notifier binds to it: "+
				"the cluster's definitions and scripts/brokers declare it, and so does order-api)", err, s.Exchange)
		}
		return err
	}
	return nil
}
