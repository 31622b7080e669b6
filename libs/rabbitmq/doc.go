// Package rabbitmq adapts github.com/rabbitmq/amqp091-go to the services of this repository.
//
// amqp091-go gives one TCP connection and its channels and leaves recovery to the application
// (its own opt-in recovery is left off: this package decides how confirms, returns and
// consumers behave across a reconnect). This package adds what every service needs on top:
//
//   - [Connection]: one long-lived connection that dials with a deadline, re-dials with capped
//     backoff after the broker goes away, re-declares the registered [Topology] before it reports
//     itself ready again, and answers readiness checks ([Connection.Ready]).
//   - [Publisher]: a pool of confirm-mode channels. Every message is persistent and mandatory;
//     Publish returns only when the broker confirmed it, and says why when it did not
//     ([ErrUnroutable], [ErrNacked], [ErrNotConnected], [ErrUnconfirmed]).
//   - [Consumer]: manual acknowledgements with a prefetch window, a pool of workers calling a
//     [Handler], re-subscription after a reconnect and a graceful [Consumer.Stop].
//   - [Module]: the fx wiring for the connection and the publisher (on a connection of its own).
//
// Ownership of the topology follows the design of the system: a publisher declares the exchange
// it publishes to, a consumer declares its queue and the bindings that feed it. Declarations are
// idempotent, so every service declares what it owns on every (re)connect.
package rabbitmq
