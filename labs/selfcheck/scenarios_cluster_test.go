package main

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func deploymentJSON(t *testing.T, doc string) deployment {
	t.Helper()
	var d deployment
	require.NoError(t, json.Unmarshal([]byte(doc), &d))
	return d
}

func TestNonRootReadsThePodSecurityContext(t *testing.T) {
	ok := deploymentJSON(t, `{"spec":{"template":{"spec":{"securityContext":{"runAsNonRoot":true,"runAsUser":65532}}}}}`)
	detail, err := nonRoot(ok)
	require.NoError(t, err)
	assert.Equal(t, "runAsNonRoot, user 65532", detail)

	for doc, want := range map[string]string{
		`{"spec":{"template":{"spec":{"securityContext":{"runAsNonRoot":false,"runAsUser":0}}}}}`: "runAsNonRoot is not true",
		`{"spec":{"template":{"spec":{}}}}`: "runAsNonRoot is not true",
		`{"spec":{"template":{"spec":{"securityContext":{"runAsNonRoot":true,"runAsUser":0}}}}}`: "runAsUser is 0 (root)",
	} {
		_, err := nonRoot(deploymentJSON(t, doc))
		assert.ErrorContains(t, err, want, doc)
	}
}

func TestRolledOutNeedsEveryReplicaUpdatedAndAvailable(t *testing.T) {
	done := deploymentJSON(t, `{"metadata":{"generation":3},"spec":{"replicas":1},"status":{"observedGeneration":3,"updatedReplicas":1,"availableReplicas":1}}`)
	_, err := rolledOut(done)
	require.NoError(t, err)

	stuck := deploymentJSON(t, `{"metadata":{"generation":4},"spec":{"replicas":1},"status":{"observedGeneration":4,"updatedReplicas":0,"availableReplicas":0}}`)
	_, err = rolledOut(stuck)
	assert.ErrorContains(t, err, "0 of 1 replicas updated, 0 available")

	unseen := deploymentJSON(t, `{"metadata":{"generation":5},"spec":{"replicas":1},"status":{"observedGeneration":4,"updatedReplicas":1,"availableReplicas":1}}`)
	_, err = rolledOut(unseen)
	assert.Error(t, err, "the controller has not seen the latest change yet")
}
