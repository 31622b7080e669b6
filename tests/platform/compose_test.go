package platform_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/backend-prep/backend-prep/tests/platform"
)

// loadCompose loads a Compose file the way `docker compose` does, with the Compose
// specification's own library: validated against the specification's JSON schema (an unknown
// key is an error), interpolated with an empty environment (so the machine running the test
// changes nothing), and checked for consistency (every secret, volume and network a service
// names is declared).
func loadCompose(t *testing.T, content []byte) (*types.Project, error) {
	t.Helper()
	root := repoRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return loader.LoadWithContext(ctx, types.ConfigDetails{
		WorkingDir:  root,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(root, "compose.yaml"), Content: content}},
		Environment: types.Mapping{},
	})
}

func composeProject(t *testing.T) *types.Project {
	t.Helper()
	content, err := os.ReadFile(filepath.Join(repoRoot(t), "compose.yaml"))
	require.NoError(t, err)
	p, err := loadCompose(t, content)
	require.NoError(t, err, "compose.yaml")
	return p
}

func TestComposeFileLoadsStrictly(t *testing.T) {
	p := composeProject(t)
	assert.Equal(t, "backend-prep", p.Name)

	content, err := os.ReadFile(filepath.Join(repoRoot(t), "compose.yaml"))
	require.NoError(t, err)
	broken := []struct {
		name, old, new, want string
	}{
		{"unknown key", "    hostname: rabbitmq\n", "    hostname: rabbitmq\n    hostnme: rabbitmq\n", "hostnme"},
		{"undeclared secret", "      - notifier-rabbitmq-url\n", "      - notifier-rabbitmq-uri\n", "notifier-rabbitmq-uri"},
		{"dependency on a missing service", "      validator:\n        condition: service_healthy\n", "      validater:\n        condition: service_healthy\n", "validater"},
	}
	for _, b := range broken {
		t.Run(b.name, func(t *testing.T) {
			require.Contains(t, string(content), b.old)
			_, err := loadCompose(t, []byte(strings.Replace(string(content), b.old, b.new, 1)))
			require.Error(t, err)
			assert.Contains(t, err.Error(), b.want)
		})
	}
}

// composeEnv is a service's environment under Compose.
func composeEnv(s types.ServiceConfig) map[string]string {
	out := map[string]string{}
	for k, v := range s.Environment {
		if v != nil {
			out[k] = *v
		}
	}
	return out
}

// clusterOnly are the variables the cluster sets and Compose need not: GOMEMLIMIT comes from
// the pod's memory limit (a resourceFieldRef), and Compose runs no Jaeger to send traces to.
var clusterOnly = []string{"GOMEMLIMIT", "OTEL_EXPORTER_OTLP_ENDPOINT"}

// Compose runs what the cluster runs: the same images (the services built from the same
// Dockerfile, to its prod target), the same environment variable names, the same container ports.
func TestComposeMatchesTheManifests(t *testing.T) {
	p := composeProject(t)
	objects := rendered(t, "manifests/overlays/dev")
	d, err := platform.ParseDockerfile(filepath.Join(repoRoot(t), "Dockerfile"))
	require.NoError(t, err)

	names := slices.Sorted(func(yield func(string) bool) {
		for name := range p.Services {
			if !yield(name) {
				return
			}
		}
	})
	assert.Equal(t, []string{"analytics", "kafka", "notifier", "order-api", "postgres", "rabbitmq", "validator"}, names)

	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			s := p.Services[name]
			c := container(t, objects, name)

			if slices.Contains(serviceNames, name) {
				require.NotNil(t, s.Build, "built from the repository")
				assert.Equal(t, repoRoot(t), s.Build.Context)
				assert.Equal(t, "Dockerfile", filepath.Base(s.Build.Dockerfile))
				assert.Equal(t, "prod", s.Build.Target)
				require.Contains(t, s.Build.Args, "SERVICE")
				assert.Equal(t, name, *s.Build.Args["SERVICE"])
				assert.Equal(t, c.Image+":prod", s.Image, "the image make images builds")
				assert.Equal(t, []string{"/server", "healthcheck"}, []string(s.HealthCheck.Test)[1:],
					"the prod image's entrypoint asks its own /readyz")
				assert.Equal(t, []string{"/server"}, entrypoint(d, "prod"))
			} else {
				assert.Nil(t, s.Build)
				assert.Equal(t, c.Image, s.Image)
			}

			var want []string
			for _, e := range platform.ContainerEnv(objects, c) {
				if !slices.Contains(clusterOnly, e.Name) {
					want = append(want, e.Name)
				}
			}
			got := slices.Sorted(func(yield func(string) bool) {
				for k := range composeEnv(s) {
					if !yield(k) {
						return
					}
				}
			})
			slices.Sort(want)
			assert.Equal(t, slices.Compact(want), got, "environment variable names")

			var containerPorts []uint32
			for _, cp := range c.Ports {
				containerPorts = append(containerPorts, uint32(cp.ContainerPort))
			}
			for _, port := range s.Ports {
				assert.Contains(t, containerPorts, port.Target, "port %d is one the container listens on", port.Target)
				assert.Equal(t, "127.0.0.1", port.HostIP, "port %d is published on loopback only", port.Target)
			}
		})
	}
}

// serviceNames are the four Go services.
var serviceNames = []string{"order-api", "validator", "notifier", "analytics"}

// runLocalAddrs reads the addresses `make run` gives each service (scripts/run-local's env_of).
func runLocalAddrs(t *testing.T) map[string]map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "scripts", "run-local"))
	require.NoError(t, err)
	out := map[string]map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^\s*\[([a-z-]+)\]="([^"]*)"$`).FindAllStringSubmatch(string(b), -1) {
		if !slices.Contains(serviceNames, m[1]) {
			continue
		}
		out[m[1]] = map[string]string{}
		for _, kv := range strings.Fields(m[2]) {
			k, v, _ := strings.Cut(kv, "=")
			out[m[1]][k] = v
		}
	}
	require.Len(t, out, len(serviceNames), "scripts/run-local names the address of every service")
	return out
}

// published maps a service's container ports to the host ports Compose publishes them on.
func published(s types.ServiceConfig) map[string]string {
	out := map[string]string{}
	for _, p := range s.Ports {
		out[fmt.Sprint(p.Target)] = p.Published
	}
	return out
}

func portOf(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err, addr)
	return port
}

// The course's commands work against Compose unchanged: every service is reachable from the host
// at the port `make run` gives it, and the brokers at `make brokers`' ports.
func TestComposePublishesMakeRunsPorts(t *testing.T) {
	p := composeProject(t)
	for name, addrs := range runLocalAddrs(t) {
		env := composeEnv(p.Services[name])
		pub := published(p.Services[name])
		for _, v := range []string{"HTTP_ADDR", "GRPC_ADDR", "ADMIN_ADDR"} {
			host, ok := addrs[v]
			if !ok {
				assert.NotContains(t, env, v, "%s: make run sets no %s", name, v)
				continue
			}
			require.Contains(t, env, v, name)
			assert.Equal(t, portOf(t, host), pub[portOf(t, env[v])], "%s: %s's port is published at make run's", name, v)
		}
	}
	for service, port := range map[string]string{"kafka": "9092", "rabbitmq": "5672", "postgres": "5432"} {
		assert.Equal(t, port, published(p.Services[service])[port], service)
	}
}

// Each service waits for what it connects to, and only for something that can say it is ready.
func TestComposeStartsServicesAfterTheirDependencies(t *testing.T) {
	p := composeProject(t)
	needs := map[string]string{ // variable -> the Compose service its address names
		"KAFKA_BOOTSTRAP_SERVERS": "kafka",
		"RABBITMQ_URL_FILE":       "rabbitmq",
		"POSTGRES_URL":            "postgres",
		"VALIDATOR_ADDR":          "validator",
	}
	for name, s := range p.Services {
		require.NotNil(t, s.HealthCheck, "%s has a health check", name)
		assert.False(t, s.HealthCheck.Disable, name)
		env := composeEnv(s)
		var want []string
		for v, dep := range needs {
			if _, ok := env[v]; ok {
				want = append(want, dep)
			}
		}
		if name == "order-api" {
			// It publishes with the mandatory flag: until the notifier has declared its queue,
			// an order would be refused.
			want = append(want, "notifier")
		}
		var got []string
		for dep, d := range s.DependsOn {
			got = append(got, dep)
			assert.Equal(t, types.ServiceConditionHealthy, d.Condition, "%s waits until %s is healthy", name, dep)
		}
		assert.ElementsMatch(t, want, got, "%s depends on", name)
	}

	// The addresses name the Compose services, at ports they listen on.
	order := composeEnv(p.Services["order-api"])
	assert.Equal(t, "validator:"+portOf(t, composeEnv(p.Services["validator"])["GRPC_ADDR"]), order["VALIDATOR_ADDR"])
	kafka := listeners(t, composeEnv(p.Services["kafka"])["KAFKA_ADVERTISED_LISTENERS"])
	for _, name := range []string{"order-api", "analytics"} {
		assert.Equal(t, kafka["INTERNAL"], composeEnv(p.Services[name])["KAFKA_BOOTSTRAP_SERVERS"],
			"%s connects to the listener advertised to the other containers", name)
	}
	assert.Equal(t, "kafka:29092", kafka["INTERNAL"])
	assert.Equal(t, "localhost:9092", kafka["HOST"], "advertised to the host, where 9092 is published")
	pg, err := url.Parse(order["POSTGRES_URL"])
	require.NoError(t, err)
	assert.Equal(t, "postgres:5432", pg.Host)
	_, hasPassword := pg.User.Password()
	assert.False(t, hasPassword, "the password comes from POSTGRES_PASSWORD_FILE")
}

// composeSecret reads the file a service's secret is mounted from, and says where it is mounted.
func composeSecret(t *testing.T, p *types.Project, service, name string) (content, target string) {
	t.Helper()
	for _, ref := range p.Services[service].Secrets {
		if ref.Source != name {
			continue
		}
		decl, ok := p.Secrets[name]
		require.True(t, ok, "secret %s is declared", name)
		b, err := os.ReadFile(decl.File)
		require.NoError(t, err)
		target = ref.Target
		if target == "" {
			target = "/run/secrets/" + name
		}
		return strings.TrimSpace(string(b)), target
	}
	t.Fatalf("%s mounts no secret %s", service, name)
	return "", ""
}

// Compose's credentials are the cluster's: the same users with the same passwords, which the
// definitions both import accept, read from files the way the cluster's pods read them.
func TestComposeCredentialsAreTheClusters(t *testing.T) {
	p := composeProject(t)
	objects := rendered(t, "manifests/overlays/dev")

	rabbit := p.Services["rabbitmq"]
	defsJSON, defsTarget := composeSecret(t, p, "rabbitmq", "rabbitmq-definitions")
	var conf string
	for _, v := range rabbit.Volumes {
		if strings.HasPrefix(v.Target, "/etc/rabbitmq/conf.d/") {
			b, err := os.ReadFile(v.Source)
			require.NoError(t, err)
			conf = string(b)
			assert.True(t, v.ReadOnly, v.Target)
		}
	}
	cm, ok := platform.Find(objects, "ConfigMap", "rabbitmq-config")
	require.True(t, ok)
	assert.Equal(t, cm.Obj.(*corev1.ConfigMap).Data["30-backend-prep.conf"], conf, "the cluster's RabbitMQ settings")
	assert.Contains(t, conf, "definitions.local.path = "+defsTarget+"\n", "the node imports the mounted definitions")
	secret, ok := platform.Find(objects, "Secret", "rabbitmq-definitions")
	require.True(t, ok)
	assert.JSONEq(t, string(secret.Obj.(*corev1.Secret).Data["definitions.json"]), defsJSON, "the cluster's definitions")
	var defs definitions
	require.NoError(t, json.Unmarshal([]byte(defsJSON), &defs))
	hashes := map[string]string{}
	for _, u := range defs.Users {
		hashes[u.Name] = u.PasswordHash
	}

	for _, name := range []string{"order-api", "notifier"} {
		raw, target := composeSecret(t, p, name, name+"-rabbitmq-url")
		assert.Equal(t, target, composeEnv(p.Services[name])["RABBITMQ_URL_FILE"], name)
		u, err := url.Parse(raw)
		require.NoError(t, err)
		password, _ := u.User.Password()
		assert.Equal(t, name, u.User.Username(), "%s connects as its own user", name)
		assert.True(t, passwordMatches(hashes[name], password), "%s's password matches its hash in the definitions", name)
		assert.Equal(t, "rabbitmq:5672", u.Host)

		o, ok := platform.Find(objects, "Secret", name+"-rabbitmq")
		require.True(t, ok)
		cluster, err := url.Parse(o.Obj.(*corev1.Secret).StringData["url"])
		require.NoError(t, err)
		assert.Equal(t, cluster.User.String(), u.User.String(), "%s: the cluster's user and password", name)
	}

	password, target := composeSecret(t, p, "postgres", "postgres-password")
	assert.Equal(t, target, composeEnv(p.Services["postgres"])["POSTGRES_PASSWORD_FILE"])
	orderPassword, orderTarget := composeSecret(t, p, "order-api", "postgres-password")
	assert.Equal(t, orderTarget, composeEnv(p.Services["order-api"])["POSTGRES_PASSWORD_FILE"])
	assert.Equal(t, password, orderPassword)
	o, ok := platform.Find(objects, "Secret", "postgres-credentials")
	require.True(t, ok)
	assert.Equal(t, o.Obj.(*corev1.Secret).StringData["password"], password, "the cluster's PostgreSQL password")
}

// The notifier writes its journal to a named volume: Docker fills an empty volume from the
// image's directory at the mount point, owner included, so the Dockerfile's prod target must
// have that directory, owned by the user the service runs as.
func TestComposeNotifierJournalIsOnAWritableVolume(t *testing.T) {
	p := composeProject(t)
	journal := composeEnv(p.Services["notifier"])["NOTIFIER_JOURNAL_PATH"]
	var mount *types.ServiceVolumeConfig
	for i, v := range p.Services["notifier"].Volumes {
		if filepath.Dir(journal) == v.Target {
			mount = &p.Services["notifier"].Volumes[i]
		}
	}
	require.NotNil(t, mount, "the journal %s is on a mounted volume", journal)
	assert.Equal(t, types.VolumeTypeVolume, mount.Type)
	assert.Contains(t, p.Volumes, mount.Source, "a named volume, kept across down and up")

	d, err := platform.ParseDockerfile(filepath.Join(repoRoot(t), "Dockerfile"))
	require.NoError(t, err)
	user := d.User("prod")
	var owned bool
	for _, c := range d.Commands("prod") {
		if cp, ok := c.(*instructions.CopyCommand); ok && cp.Chown == user &&
			strings.TrimSuffix(cp.DestPath, "/") == mount.Target {
			owned = true
		}
	}
	assert.True(t, owned, "the prod target creates %s owned by %s", mount.Target, user)
}

// entrypoint is the exec-form ENTRYPOINT a target's image runs.
func entrypoint(d *platform.Dockerfile, target string) []string {
	var cmd []string
	for _, c := range d.Commands(target) {
		if e, ok := c.(*instructions.EntrypointCommand); ok {
			cmd = e.CmdLine
		}
	}
	return cmd
}
