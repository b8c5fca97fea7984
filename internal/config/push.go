package config

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/camfeed/camfeed/internal/push/pushurl"
)

// PushTarget is one server a feed is pushed to (internal/push). In YAML it
// is a URL, or a mapping with the URL and a WHIP bearer token:
//
//	push:
//	  - rtmp://a.rtmp.youtube.com/live2/STREAMKEY
//	  - url: whip+https://customer-x.cloudflarestream.com/KEY/webRTC/publish
//	    token: SECRET
type PushTarget struct {
	URL   string `yaml:"url"`
	Token string `yaml:"token"`
}

// UnmarshalYAML takes a URL or a {url, token} mapping; any other key is
// an error naming its line.
func (p *PushTarget) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		p.URL = n.Value
		return nil
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if v.Kind != yaml.ScalarNode {
				return fmt.Errorf("line %d: must be text (a push target has url and token)", v.Line)
			}
			switch k.Value {
			case "url":
				p.URL = v.Value
			case "token":
				p.Token = v.Value
			default:
				return fmt.Errorf("line %d: unknown key %q (a push target has url and token)", k.Line, k.Value)
			}
		}
		return nil
	}
	return fmt.Errorf("line %d: each push target is a URL, or a mapping with url and token", n.Line)
}

// validatePush checks a feed's push targets; errors name the key and the
// target with its secrets masked.
func validatePush(prefix string, ts []PushTarget) []error {
	var errs []error
	for i, t := range ts {
		if strings.TrimSpace(t.URL) == "" {
			errs = append(errs, fmt.Errorf("%spush[%d]: no url", prefix, i))
			continue
		}
		u, err := pushurl.Parse(t.URL)
		if err != nil {
			errs = append(errs, fmt.Errorf("%spush[%d]: %w", prefix, i, err))
			continue
		}
		if t.Token != "" && u.Scheme != "whip+http" && u.Scheme != "whip+https" {
			errs = append(errs, fmt.Errorf("%spush[%d]: token is for whip+http(s) targets only, not %s", prefix, i, pushurl.Mask(u)))
		}
	}
	return errs
}
