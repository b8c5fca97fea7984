package config

import _ "embed"

// Sample is the shipped sample configuration (camfeed.yaml at the repo
// root, kept equal to Default() by a test), for service install.
//
//go:embed camfeed.yaml
var Sample []byte
