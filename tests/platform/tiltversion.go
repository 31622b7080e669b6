package platform

import (
	"cmp"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// tiltSince is the first Tilt release that accepts each builtin and keyword argument the
// stand-in knows, as "name()" and "name(kw=)", and each extension as "ext://name" (the
// newest Tilt feature the extension's code calls, at the ref the Tiltfile pins). Found
// in tilt-dev/tilt's history: the commit that added the argument to internal/tiltfile,
// then the oldest release tag that contains it. An entry marked "at the latest" is
// older than that, which does not matter while the floor is far above it.
//
// The version floor check needs an entry for everything a Tiltfile uses, so a new
// builtin or argument cannot raise the floor unnoticed: look its release up when the
// check asks for it.
var tiltSince = map[string]string{
	"ci_settings()":                             "0.31.0",
	"ci_settings(timeout=)":                     "0.31.0",
	"ci_settings(readiness_timeout=)":           "0.35.0", // b13e2d0, "ci: add ci_settings(readiness_timeout)"
	"version_settings()":                        "0.10.19",
	"version_settings(constraint=)":             "0.13.2",
	"update_settings()":                         "0.11.0",
	"update_settings(max_parallel_updates=)":    "0.11.0",
	"update_settings(k8s_upsert_timeout_secs=)": "0.14.0",
	"config.define_bool()":                      "0.12.2",
	"config.define_bool(usage=)":                "0.12.2",
	"config.parse()":                            "0.10.23",
	"v1alpha1.extension_repo()":                 "0.22.4",
	"v1alpha1.extension_repo(name=)":            "0.22.4",
	"v1alpha1.extension_repo(url=)":             "0.22.4",
	"v1alpha1.extension_repo(ref=)":             "0.22.5",
	"k8s_yaml()":                                "0.0.1",
	"kustomize()":                               "0.0.1",
	"k8s_resource()":                            "0.4.1", // at the latest
	"k8s_resource(new_name=)":                   "0.7.12",
	"k8s_resource(objects=)":                    "0.13.5",
	"k8s_resource(resource_deps=)":              "0.10.15",
	"k8s_resource(port_forwards=)":              "0.4.1", // at the latest
	"k8s_resource(labels=)":                     "0.22.1",
	"k8s_resource(links=)":                      "0.17.9", // 9511b7fdf, "tiltfile/model: can attach arbitrary links to k8s resource"
	"link()":                                    "0.17.8", // cde9ad2cf, "tiltfile: can attach links to local resource"
	"port_forward()":                            "0.0.1",
	"port_forward(name=)":                       "0.17.7",
	"port_forward(link_path=)":                  "0.17.9",
	"local_resource()":                          "0.10.8",
	"local_resource(cmd=)":                      "0.10.8",
	"local_resource(trigger_mode=)":             "0.10.8",
	"local_resource(auto_init=)":                "0.10.18",
	"local_resource(allow_parallel=)":           "0.17.2",
	"local_resource(labels=)":                   "0.22.1",
	"sync()":                                    "0.0.1",
	"run()":                                     "0.0.1",
	"run(trigger=)":                             "0.0.1",
	"os.path.exists()":                          "0.13.4", // at the latest
	// restart_process calls docker_build(dockerfile_contents=), run(trigger=) and
	// os.getcwd (0.12.5); uibutton calls v1alpha1.ui_button(requires_confirmation=).
	"ext://restart_process": "0.12.5",
	"ext://uibutton":        "0.22.14",
}

// checkVersionFloor reports what the Tiltfile uses that is newer than the oldest Tilt
// its version_settings(constraint=) lets run it: on that Tilt, `tilt up` would stop at
// an unexpected keyword argument or an unknown builtin.
func (r *TiltRun) checkVersionFloor() []error {
	floor, err := constraintFloor(r.VersionConstraint)
	if err != nil {
		return []error{err}
	}
	var errs []error
	uses := slices.Sorted(slices.Values(r.Uses))
	for _, use := range uses {
		since, ok := tiltSince[use]
		if !ok {
			errs = append(errs, fmt.Errorf("%s: the first Tilt release that accepts it is not known here; look it up in tilt-dev/tilt's history and add it to tiltSince", use))
			continue
		}
		if compareVersions(since, floor) > 0 {
			errs = append(errs, fmt.Errorf("%s needs Tilt %s, but version_settings(constraint=%q) lets Tilt %s run this file", use, since, r.VersionConstraint, floor))
		}
	}
	return errs
}

// MinTilt is the oldest Tilt the Tiltfile's version_settings accepts.
func (r *TiltRun) MinTilt() (string, error) { return constraintFloor(r.VersionConstraint) }

// constraintFloor reads the oldest version a ">=X.Y.Z" constraint accepts; the stand-in
// understands no other form, so the floor is always explicit.
func constraintFloor(constraint string) (string, error) {
	if constraint == "" {
		return "", fmt.Errorf("the Tiltfile sets no version_settings(constraint=...): an older Tilt would fail on whatever it does not know, instead of saying which version to install")
	}
	v, ok := strings.CutPrefix(strings.TrimSpace(constraint), ">=")
	v = strings.TrimPrefix(strings.TrimSpace(v), "v")
	if !ok || !releaseNumber.MatchString(v) {
		return "", fmt.Errorf("version_settings(constraint=%q): the stand-in understands only \">=X.Y.Z\"", constraint)
	}
	return v, nil
}

var releaseNumber = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+$`)

// compareVersions compares two X.Y.Z release numbers, as cmp.Compare does.
func compareVersions(a, b string) int {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := range 3 {
		x, _ := strconv.Atoi(pa[i])
		y, _ := strconv.Atoi(pb[i])
		if c := cmp.Compare(x, y); c != 0 {
			return c
		}
	}
	return 0
}

// TiltSince returns a copy of the release table, for its own tests.
func TiltSince() map[string]string { return maps.Clone(tiltSince) }
