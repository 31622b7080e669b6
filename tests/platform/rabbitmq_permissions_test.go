package platform_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backend-prep/backend-prep/libs/brokertest"
)

// On a real broker, a user with the permissions of each service (the ones scripts/brokers
// grants and the cluster's definitions grant, see TestRabbitMQUsersComeFromDefinitionsImportedAtBoot)
// may do what its service does and is refused with ACCESS_REFUSED what it does not need. The
// users are the test's own, uniquely named, so that the broker others share keeps its users.
func TestRabbitMQServiceUsersMayDoOnlyWhatTheirServiceNeeds(t *testing.T) {
	adminURL := brokertest.RabbitMQURL(t)
	ctl := rabbitmqctlCommand(t)
	perms := servicePermissions(t)
	suffix := randomHex(t)

	// Named as the permissions expect: the notifier's objects start with "notifier.", the exchange
	// order-api publishes to is "orders", and a queue of nobody in particular.
	ownQueue := "notifier.permission-test." + suffix
	ownDLX := ownQueue + ".dlx"
	otherQueue := "permission-test." + suffix
	ownQueueArgs := amqp.Table{"x-dead-letter-exchange": ownDLX}
	admin := dialAMQP(t, adminURL)
	onChannel(t, admin, func(ch *amqp.Channel) error {
		return errors.Join(
			ch.ExchangeDeclare("orders", amqp.ExchangeTopic, true, false, false, false, nil),
			ch.ExchangeDeclare(ownDLX, amqp.ExchangeFanout, true, false, false, false, nil),
			declareQueue(ch, ownQueue, ownQueueArgs),
			declareQueue(ch, otherQueue, nil))
	})
	t.Cleanup(func() {
		onChannel(t, admin, func(ch *amqp.Channel) error {
			_, errOwn := ch.QueueDelete(ownQueue, false, false, false)
			_, errOther := ch.QueueDelete(otherQueue, false, false, false)
			return errors.Join(errOwn, errOther, ch.ExchangeDelete(ownDLX, false, false))
		})
	})

	conns := map[string]*amqp.Connection{}
	for service, p := range perms {
		user, password := "permission-test-"+service+"-"+suffix, randomHex(t)
		runCtl(t, ctl, "add_user", user, password)
		t.Cleanup(func() { runCtl(t, ctl, "delete_user", user) })
		runCtl(t, ctl, "set_permissions", "-p", "/", user, p.Configure, p.Write, p.Read)
		u, err := url.Parse(adminURL)
		require.NoError(t, err)
		u.User = url.UserPassword(user, password)
		conns[service] = dialAMQP(t, u.String())
	}

	key := "permission-test." + suffix // routed nowhere: nothing published here reaches a queue
	cases := []struct {
		service string
		action  string
		do      func(*amqp.Channel) error
		allowed bool
	}{
		{"order-api", "declare the exchange orders", declareOrders, true},
		{"order-api", "publish to orders", publish("orders", key), true},
		{"order-api", "declare a queue", func(ch *amqp.Channel) error { return declareQueue(ch, ownQueue+".new", nil) }, false},
		{"order-api", "consume from the notifier's queue", consume(ownQueue), false},
		{"order-api", "get from the notifier's queue", func(ch *amqp.Channel) error { _, _, err := ch.Get(ownQueue, false); return err }, false},
		{"order-api", "bind the notifier's queue to orders", bind(ownQueue, "orders", key), false},
		{"order-api", "publish to the notifier's exchange", publish(ownDLX, key), false},
		{"order-api", "delete a queue", deleteQueue(otherQueue), false},

		{"notifier", "declare its dead-letter exchange", func(ch *amqp.Channel) error {
			return ch.ExchangeDeclare(ownDLX, amqp.ExchangeFanout, true, false, false, false, nil)
		}, true},
		{"notifier", "declare its queue with that dead-letter exchange", func(ch *amqp.Channel) error { return declareQueue(ch, ownQueue, ownQueueArgs) }, true},
		{"notifier", "bind its queue to orders", bind(ownQueue, "orders", key), true},
		{"notifier", "consume from its queue", consume(ownQueue), true},
		{"notifier", "publish to its own exchange", publish(ownDLX, key), true},
		{"notifier", "publish to orders", publish("orders", key), false},
		{"notifier", "declare the exchange orders", declareOrders, false},
		{"notifier", "declare a queue not named notifier.…", func(ch *amqp.Channel) error { return declareQueue(ch, otherQueue, nil) }, false},
		{"notifier", "declare its queue dead-lettering to orders", func(ch *amqp.Channel) error {
			return declareQueue(ch, ownQueue+".new", amqp.Table{"x-dead-letter-exchange": "orders"})
		}, false},
		{"notifier", "consume from another queue", consume(otherQueue), false},
		{"notifier", "delete another queue", deleteQueue(otherQueue), false},
	}
	for _, tc := range cases {
		verdict := "may not"
		if tc.allowed {
			verdict = "may"
		}
		t.Run(tc.service+" "+verdict+" "+tc.action, func(t *testing.T) {
			err := onNewChannel(conns[tc.service], tc.do)
			if tc.allowed {
				require.NoError(t, err)
				return
			}
			var amqpErr *amqp.Error
			require.ErrorAs(t, err, &amqpErr)
			assert.Equal(t, amqp.AccessRefused, amqpErr.Code, amqpErr.Reason)
			t.Log(amqpErr.Reason)
		})
	}
}

// The users `make brokers` created log in, with the permissions of the list.
func TestMakeBrokersServiceUsersHaveTheListedPermissions(t *testing.T) {
	brokertest.RabbitMQURL(t)
	ctl := rabbitmqctlCommand(t)
	granted := map[string]permission{}
	for _, line := range strings.Split(runCtl(t, ctl, "-q", "list_permissions", "-p", "/"), "\n") {
		if f := strings.Fields(line); len(f) == 4 {
			granted[f[0]] = permission{Configure: f[1], Write: f[2], Read: f[3]}
		}
	}
	for service, want := range servicePermissions(t) {
		t.Run(service, func(t *testing.T) {
			name := strings.ToUpper(strings.ReplaceAll(service, "-", "_")) + "_RABBITMQ_URL"
			u := os.Getenv(name)
			if u == "" {
				if os.Getenv("CI") == "true" {
					t.Fatalf("%s is not set: CI exports `scripts/brokers env`", name)
				}
				t.Skipf("%s is not set: eval \"$(scripts/brokers env)\" (make test does)", name)
			}
			assert.Equal(t, want, granted[service])
			dialAMQP(t, u)
		})
	}
}

// rabbitmqctlCommand is the rabbitmqctl of the broker of RABBITMQ_URL, as brokertest runs it.
func rabbitmqctlCommand(t *testing.T) []string {
	t.Helper()
	if os.Getenv("RABBITMQ_URL") == "" {
		t.Fatal("this test creates users with rabbitmqctl: run it against `make brokers` " +
			"(eval \"$(scripts/brokers env)\" exports RABBITMQ_URL and RABBITMQCTL)")
	}
	if ctl := strings.Fields(os.Getenv("RABBITMQCTL")); len(ctl) > 0 {
		return ctl
	}
	return []string{"rabbitmqctl"}
}

func runCtl(t *testing.T, ctl []string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, ctl[0], append(ctl[1:], args...)...).CombinedOutput()
	require.NoError(t, err, "rabbitmqctl %s: %s", args[0], out)
	return string(out)
}

func randomHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 8)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}

func dialAMQP(t *testing.T, u string) *amqp.Connection {
	t.Helper()
	conn, err := amqp.DialConfig(u, amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.CloseDeadline(time.Now().Add(5 * time.Second)) })
	return conn
}

func onChannel(t *testing.T, conn *amqp.Connection, fn func(*amqp.Channel) error) {
	t.Helper()
	require.NoError(t, onNewChannel(conn, fn))
}

// onNewChannel runs fn on a channel of its own (a refusal closes the channel), bounded by 20s.
func onNewChannel(conn *amqp.Connection, fn func(*amqp.Channel) error) error {
	done := make(chan error, 1)
	go func() {
		ch, err := conn.Channel()
		if err != nil {
			done <- err
			return
		}
		err = fn(ch)
		_ = ch.Close() // a channel the broker closed is closed already
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(20 * time.Second):
		_ = conn.CloseDeadline(time.Now().Add(time.Second)) // unblocks fn
		return errors.New("the broker did not answer in 20s")
	}
}

func declareOrders(ch *amqp.Channel) error {
	return ch.ExchangeDeclare("orders", amqp.ExchangeTopic, true, false, false, false, nil)
}

func declareQueue(ch *amqp.Channel, name string, args amqp.Table) error {
	_, err := ch.QueueDeclare(name, true, false, false, false, args)
	return err
}

func deleteQueue(name string) func(*amqp.Channel) error {
	return func(ch *amqp.Channel) error {
		_, err := ch.QueueDelete(name, false, false, false)
		return err
	}
}

func bind(queue, exchange, key string) func(*amqp.Channel) error {
	return func(ch *amqp.Channel) error { return ch.QueueBind(queue, key, exchange, false, nil) }
}

func consume(queue string) func(*amqp.Channel) error {
	return func(ch *amqp.Channel) error {
		if _, err := ch.Consume(queue, "permission-test", false, false, false, false, nil); err != nil {
			return err
		}
		return ch.Cancel("permission-test", false)
	}
}

// publish publishes in confirm mode: a publish the broker refuses closes the channel with
// ACCESS_REFUSED instead of being confirmed.
func publish(exchange, key string) func(*amqp.Channel) error {
	return func(ch *amqp.Channel) error {
		closed := ch.NotifyClose(make(chan *amqp.Error, 1))
		if err := ch.Confirm(false); err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, exchange, key, false, false,
			amqp.Publishing{ContentType: "text/plain", Body: []byte("permission test")})
		if err != nil {
			return err
		}
		acked, err := dc.WaitContext(ctx)
		if acked {
			return nil
		}
		select {
		case reason := <-closed:
			if reason != nil {
				return reason
			}
		case <-ctx.Done():
		}
		return fmt.Errorf("publish to %q not confirmed: %w", exchange, err)
	}
}
