package platform_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/backend-prep/backend-prep/tests/platform"
)

// permission is what one RabbitMQ user may do in the virtual host "/": the regular
// expressions of `rabbitmqctl set_permissions`.
type permission struct {
	Configure string `json:"configure"`
	Write     string `json:"write"`
	Read      string `json:"read"`
}

// servicePermissions reads scripts/brokers.d/rabbitmq/permissions, the one list of the
// services' RabbitMQ users and their permissions: scripts/brokers grants it, and the
// cluster's definitions must grant the same.
func servicePermissions(t *testing.T) map[string]permission {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot(t), "scripts", "brokers.d", "rabbitmq", "permissions"))
	require.NoError(t, err)
	defer f.Close()
	out := map[string]permission{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		require.Len(t, fields, 4, "user configure write read: %q", line)
		out[fields[0]] = permission{Configure: fields[1], Write: fields[2], Read: fields[3]}
	}
	require.NoError(t, sc.Err())
	require.Contains(t, out, "order-api")
	require.Contains(t, out, "notifier")
	return out
}

// definitions is the part of a RabbitMQ definitions file this repository writes.
type definitions struct {
	Vhosts []struct {
		Name string `json:"name"`
	} `json:"vhosts"`
	Users []struct {
		Name             string   `json:"name"`
		PasswordHash     string   `json:"password_hash"`
		HashingAlgorithm string   `json:"hashing_algorithm"`
		Tags             []string `json:"tags"`
	} `json:"users"`
	Permissions []struct {
		User  string `json:"user"`
		Vhost string `json:"vhost"`
		permission
	} `json:"permissions"`
	Exchanges []struct {
		Name       string         `json:"name"`
		Vhost      string         `json:"vhost"`
		Type       string         `json:"type"`
		Durable    bool           `json:"durable"`
		AutoDelete bool           `json:"auto_delete"`
		Internal   bool           `json:"internal"`
		Arguments  map[string]any `json:"arguments"`
	} `json:"exchanges"`
}

// passwordMatches checks a password_hash by RabbitMQ's documented default algorithm
// (rabbitmq.com/docs/passwords, "Computing Password Hashes"): base64 of a 4-byte salt
// followed by SHA-256(salt ++ password).
func passwordMatches(hash, password string) bool {
	raw, err := base64.StdEncoding.DecodeString(hash)
	if err != nil || len(raw) != 4+sha256.Size {
		return false
	}
	sum := sha256.Sum256(append(append([]byte{}, raw[:4]...), password...))
	return bytes.Equal(sum[:], raw[4:])
}

func TestPasswordMatchesRabbitMQsDocumentedExample(t *testing.T) {
	// The worked example of the passwords guide: salt 908DC60A, password test12.
	assert.True(t, passwordMatches("kI3GCqW5JLMJa4iX1lo7X4D6XbYqlLgxIs30+P6tENUV2POR", "test12"))
	assert.False(t, passwordMatches("kI3GCqW5JLMJa4iX1lo7X4D6XbYqlLgxIs30+P6tENUV2POR", "test13"))
}

// secretFile follows a container's mount to the Secret key that holds the file at p.
func secretFile(t *testing.T, objects []platform.Object, spec *corev1.PodSpec, c *corev1.Container, p string) string {
	t.Helper()
	for _, m := range c.VolumeMounts {
		if path.Dir(p) != m.MountPath || m.SubPath != "" {
			continue
		}
		for _, v := range spec.Volumes {
			if v.Name != m.Name || v.Secret == nil {
				continue
			}
			o, ok := platform.Find(objects, "Secret", v.Secret.SecretName)
			require.True(t, ok, "no Secret %q", v.Secret.SecretName)
			secret := o.Obj.(*corev1.Secret)
			value, ok := secret.StringData[path.Base(p)]
			if data, generated := secret.Data[path.Base(p)]; generated {
				value, ok = string(data), true
			}
			require.True(t, ok, "Secret %q has no key %q", v.Secret.SecretName, path.Base(p))
			require.NotNil(t, v.Secret.DefaultMode)
			assert.Equal(t, int32(0o440), *v.Secret.DefaultMode, "only the pod's group reads %s", p)
			require.NotNil(t, spec.SecurityContext.FSGroup, "the pod's group owns its Secret's files")
			return value
		}
	}
	t.Fatalf("container %q mounts no Secret at %s", c.Name, path.Dir(p))
	return ""
}

func TestRabbitMQUsersComeFromDefinitionsImportedAtBoot(t *testing.T) {
	objects := rendered(t, "manifests/overlays/dev")
	w, ok := platform.FindWorkload(objects, "rabbitmq")
	require.True(t, ok)
	rabbit := &w.Template.Spec.Containers[0]
	for _, e := range rabbit.Env {
		assert.NotContains(t, []string{"RABBITMQ_DEFAULT_USER", "RABBITMQ_DEFAULT_PASS"}, e.Name,
			"a node that imports definitions at boot creates no default user")
	}

	o, ok := platform.Find(objects, "ConfigMap", "rabbitmq-config")
	require.True(t, ok)
	conf := map[string]string{}
	for _, line := range strings.Split(o.Obj.(*corev1.ConfigMap).Data["30-backend-prep.conf"], "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(strings.TrimSpace(line), "#") {
			conf[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	assert.Equal(t, "local_filesystem", conf["definitions.import_backend"])
	var defs definitions
	require.NoError(t, json.Unmarshal([]byte(secretFile(t, objects, &w.Template.Spec, rabbit, conf["definitions.local.path"])), &defs))

	hashes, grants := map[string]string{}, map[string]permission{}
	tags := map[string][]string{}
	for _, u := range defs.Users {
		assert.Equal(t, "rabbit_password_hashing_sha256", u.HashingAlgorithm, u.Name)
		hashes[u.Name], tags[u.Name] = u.PasswordHash, u.Tags
	}
	for _, p := range defs.Permissions {
		assert.Equal(t, "/", p.Vhost)
		grants[p.User] = p.permission
	}
	require.Len(t, defs.Vhosts, 1, "a blank node that imports definitions creates no default vhost")
	assert.Equal(t, "/", defs.Vhosts[0].Name)

	t.Run("the administrator of the management UI and the course is the rabbitmq-credentials user", func(t *testing.T) {
		o, ok := platform.Find(objects, "Secret", "rabbitmq-credentials")
		require.True(t, ok)
		admin := o.Obj.(*corev1.Secret).StringData
		assert.NotEqual(t, "guest", admin["username"])
		assert.True(t, passwordMatches(hashes[admin["username"]], admin["password"]), "the hash of %s is not its password's", admin["username"])
		assert.Equal(t, []string{"administrator"}, tags[admin["username"]])
		assert.Equal(t, permission{".*", ".*", ".*"}, grants[admin["username"]])
	})
	t.Run("the exchange orders is declared as order-api declares it", func(t *testing.T) {
		require.Len(t, defs.Exchanges, 1)
		x := defs.Exchanges[0]
		assert.Equal(t, []any{"orders", "/", "topic", true, false, false}, []any{x.Name, x.Vhost, x.Type, x.Durable, x.AutoDelete, x.Internal})
		assert.Empty(t, x.Arguments)
	})
	want := servicePermissions(t)
	assert.Len(t, defs.Users, 1+len(want), "the administrator and one user per service, no other")
	for service, perm := range want {
		t.Run(service+" reads its own user's URL from its Secret, mounted as a file", func(t *testing.T) {
			w, ok := platform.FindWorkload(objects, service)
			require.True(t, ok)
			c := &w.Template.Spec.Containers[0]
			file, ok := platform.EnvValue(objects, c, "RABBITMQ_URL_FILE")
			require.True(t, ok, "%s sets no RABBITMQ_URL_FILE", service)
			for _, e := range c.Env {
				assert.NotEqual(t, "RABBITMQ_URL", e.Name, "the URL holds a password: a file, not the environment")
			}
			u, err := url.Parse(secretFile(t, objects, &w.Template.Spec, c, file))
			require.NoError(t, err)
			assert.Equal(t, "amqp", u.Scheme)
			assert.Equal(t, "rabbitmq", serviceAddress(t, objects, u.Host).Name)
			password, _ := u.User.Password()
			assert.Equal(t, service, u.User.Username())
			assert.True(t, passwordMatches(hashes[service], password), "the hash of %s is not its password's", service)
			assert.Empty(t, tags[service], "no management UI access")
			assert.Equal(t, perm, grants[service], "the cluster grants what scripts/brokers.d/rabbitmq/permissions says")
		})
	}
}

func TestNotifierKeepsItsJournalOnAVolumeWithOneWriter(t *testing.T) {
	objects := rendered(t, "manifests/overlays/dev")
	o, ok := platform.Find(objects, "Deployment", "notifier")
	require.True(t, ok)
	d := o.Obj.(*appsv1.Deployment)
	assert.Equal(t, int32(1), *d.Spec.Replicas)
	assert.Equal(t, appsv1.RecreateDeploymentStrategyType, d.Spec.Strategy.Type, "the old pod stops before the new one opens the journal")

	c := &d.Spec.Template.Spec.Containers[0]
	journal, ok := platform.EnvValue(objects, c, "NOTIFIER_JOURNAL_PATH")
	require.True(t, ok)
	for _, m := range c.VolumeMounts {
		if m.MountPath != path.Dir(journal) {
			continue
		}
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Name == m.Name {
				require.NotNil(t, v.PersistentVolumeClaim, "the journal's volume outlives the pod")
				o, ok := platform.Find(objects, "PersistentVolumeClaim", v.PersistentVolumeClaim.ClaimName)
				require.True(t, ok, "no claim %q", v.PersistentVolumeClaim.ClaimName)
				assert.Equal(t, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}, o.Obj.(*corev1.PersistentVolumeClaim).Spec.AccessModes)
				return
			}
		}
	}
	t.Fatalf("nothing is mounted at %s", path.Dir(journal))
}
