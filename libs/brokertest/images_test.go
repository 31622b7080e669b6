package brokertest

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBrokerImagesComeFromTheManifests(t *testing.T) {
	for name, image := range map[string]func() (string, error){"kafka": kafkaImage, "rabbitmq": rabbitMQImage, "postgres": postgresImage} {
		t.Run(name, func(t *testing.T) {
			got, err := image()
			require.NoError(t, err)
			assert.Regexp(t, `^(apache/kafka|rabbitmq|postgres):[0-9]+\.[0-9]+`, got, "a pinned release, not a floating tag")
		})
	}
}

func TestImageIn(t *testing.T) {
	tests := []struct {
		name, manifest, want, wantErr string
	}{
		{name: "plain", manifest: "containers:\n  - name: kafka\n    image: apache/kafka:4.3.1\n", want: "apache/kafka:4.3.1"},
		{name: "list item, quoted", manifest: "  - image: 'apache/kafka:4.3.1'\n", want: "apache/kafka:4.3.1"},
		{name: "with digest", manifest: "image: apache/kafka:4.3.1@sha256:" + sixtyFourHex + "\n", want: "apache/kafka:4.3.1@sha256:" + sixtyFourHex},
		{name: "other repository only", manifest: "image: apache/kafka-native:4.3.1\n", wantErr: "runs no apache/kafka:<tag> image"},
		{name: "no tag", manifest: "image: apache/kafka\n", wantErr: "runs no apache/kafka:<tag> image"},
		{name: "two", manifest: "image: apache/kafka:4.3.1\nimage: apache/kafka:4.2.0\n", wantErr: "names 2 apache/kafka images"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := imageIn([]byte(tc.manifest), "apache/kafka", "statefulset.yaml")
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

const sixtyFourHex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
