package doctor

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// The parsers of the files doctor reads. They never fail: what they do not
// understand they skip, so a damaged file gives fewer facts, not an error.

// BootConfig is what doctor needs from config.txt.
type BootConfig struct {
	// Values holds key=value lines (the last one wins). Conditional
	// sections ([pi4], [all]) are read alike: a setting in any of them
	// may apply to this board.
	Values map[string]string
	// Sensors are the camera overlays (dtoverlay=imx708,... and the like).
	Sensors []string
}

// sensorOverlay matches the overlays of camera sensors: Sony IMX and
// OmniVision OV sensors, and Arducam's.
var sensorOverlay = regexp.MustCompile(`^(imx\d+|ov\d+|arducam)`)

// ParseBootConfig parses the Raspberry Pi firmware's config.txt.
func ParseBootConfig(text string) BootConfig {
	bc := BootConfig{Values: map[string]string{}}
	for _, line := range strings.Split(text, "\n") {
		line, _, _ = strings.Cut(line, "#")
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if k == "dtoverlay" {
			name, _, _ := strings.Cut(v, ",")
			if sensorOverlay.MatchString(name) && !slices.Contains(bc.Sensors, name) {
				bc.Sensors = append(bc.Sensors, name)
			}
			continue
		}
		bc.Values[k] = v
	}
	return bc
}

// ParseMeminfo parses /proc/meminfo (or the memory lines of
// /proc/PID/status) into bytes by field name.
func ParseMeminfo(text string) map[string]int64 {
	out := map[string]int64{}
	for _, line := range strings.Split(text, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || n < 0 || n > 1<<50 {
			continue
		}
		if len(f) > 1 && f[1] == "kB" {
			n *= 1024
		}
		out[strings.TrimSpace(k)] = n
	}
	return out
}

// groupEntry is one line of /etc/group.
type groupEntry struct {
	gid     string
	members []string
}

// parseGroups parses /etc/group.
func parseGroups(text string) map[string]groupEntry {
	out := map[string]groupEntry{}
	for _, line := range strings.Split(text, "\n") {
		f := strings.Split(strings.TrimSpace(line), ":")
		if len(f) < 4 || f[0] == "" {
			continue
		}
		g := groupEntry{gid: f[2]}
		for _, m := range strings.Split(f[3], ",") {
			if m = strings.TrimSpace(m); m != "" {
				g.members = append(g.members, m)
			}
		}
		out[f[0]] = g
	}
	return out
}

// primaryGID returns a user's group id from /etc/passwd, or "".
func primaryGID(passwd, user string) string {
	for _, line := range strings.Split(passwd, "\n") {
		f := strings.Split(line, ":")
		if len(f) >= 4 && f[0] == user {
			return f[3]
		}
	}
	return ""
}

// unitService is what doctor needs from a systemd unit's [Service].
type unitService struct {
	user   string   // User=; "" runs as root
	groups []string // Group= and SupplementaryGroups=
}

// parseUnit parses a systemd unit file's [Service] section.
func parseUnit(text string) unitService {
	var u unitService
	section := ""
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[") {
			section = line
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || section != "[Service]" {
			continue
		}
		switch strings.TrimSpace(k) {
		case "User":
			u.user = strings.TrimSpace(v)
		case "Group", "SupplementaryGroups":
			u.groups = append(u.groups, strings.Fields(v)...)
		}
	}
	return u
}

// parseStatusPPid returns the PPid: line of /proc/PID/status, or 0.
func parseStatusPPid(text string) int {
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, "PPid:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

// ParseNetSockets parses /proc/net/tcp, tcp6, udp or udp6 into socket
// inodes by local port. listenOnly keeps TCP sockets in state LISTEN (0A).
func ParseNetSockets(text string, listenOnly bool) map[int][]string {
	out := map[int][]string{}
	for i, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) < 10 {
			continue
		}
		_, portHex, ok := strings.Cut(f[1], ":")
		if !ok {
			continue
		}
		port, err := strconv.ParseUint(portHex, 16, 16)
		if err != nil || (listenOnly && f[3] != "0A") || f[9] == "0" {
			continue
		}
		out[int(port)] = append(out[int(port)], f[9])
	}
	return out
}
