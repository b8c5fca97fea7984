package cameras

import (
	"regexp"
	"strconv"
	"strings"
)

// The output of `rpicam-hello --list-cameras` (rpicam-apps docs, "Camera
// software", --list-cameras), one camera per header line, its modes
// grouped by raw format:
//
//	0 : imx708 [4608x2592 10-bit RGGB] (/base/soc/i2c0mux/i2c@1/imx708@1a)
//	    Modes: 'SRGGB10_CSI2P' : 1536x864 [120.13 fps - (768, 432)/3072x1728 crop]
//	                             2304x1296 [56.03 fps - (0, 0)/4608x2592 crop]
//
// Older libcamera-apps print neither bit depth in the header nor fps and
// crop per mode, and put several sizes on one line. libcamera log lines
// ("[0:01:52.44] [1735]  INFO ...") may be mixed in.
var (
	headerRE = regexp.MustCompile(`^\s*(\d+)\s*:\s*(\S+)\s*\[([^\]]*)\]\s*\(([^)]*)\)`)
	formatRE = regexp.MustCompile(`'([^']+)'\s*:`)
	modeRE   = regexp.MustCompile(`(\d+)x(\d+)(?:\s*\[\s*([\d.]+)\s*fps\s*-\s*(\(\s*\d+,\s*\d+\)/\d+x\d+)\s*crop\s*\])?`)
	arrayRE  = regexp.MustCompile(`^(\d+)x(\d+)(?:\s+(\d+)-bit)?(?:\s+(\S+))?`)
	digitsRE = regexp.MustCompile(`\d+`)
)

// ParseList parses the output of `rpicam-hello --list-cameras`. It never
// fails: lines it does not understand are skipped, and "No cameras
// available!" gives none.
func ParseList(text string) []Camera {
	var cams []Camera
	var cur *Camera
	format := ""
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.HasPrefix(strings.TrimSpace(line), "[") && !modeLine(line) {
			continue // a libcamera log line
		}
		if m := headerRE.FindStringSubmatch(line); m != nil {
			idx, _ := strconv.Atoi(m[1])
			c := Camera{Kind: KindCSI, Index: idx, Sensor: m[2], Model: models[m[2]], Path: m[4], Source: "rpicam"}
			if a := arrayRE.FindStringSubmatch(strings.TrimSpace(m[3])); a != nil {
				c.Width, _ = strconv.Atoi(a[1])
				c.Height, _ = strconv.Atoi(a[2])
				c.BitDepth, _ = strconv.Atoi(a[3])
				c.Bayer = a[4]
			}
			cams = append(cams, c)
			cur = &cams[len(cams)-1]
			format = ""
			continue
		}
		if cur == nil {
			continue
		}
		rest := line
		if i := strings.Index(rest, "Modes:"); i >= 0 {
			rest = rest[i+len("Modes:"):]
		}
		if f := formatRE.FindStringSubmatchIndex(rest); f != nil {
			format = rest[f[2]:f[3]]
			rest = rest[f[1]:]
		}
		if format == "" {
			continue
		}
		for _, m := range modeRE.FindAllStringSubmatch(rest, -1) {
			mode := Mode{Format: format, BitDepth: formatDepth(format), Packing: "U", Crop: m[4]}
			mode.Width, _ = strconv.Atoi(m[1])
			mode.Height, _ = strconv.Atoi(m[2])
			mode.MaxFPS, _ = strconv.ParseFloat(m[3], 64)
			if strings.Contains(format, "CSI2P") {
				mode.Packing = "P"
			}
			cur.Modes = append(cur.Modes, mode)
		}
	}
	return cams
}

// modeLine tells a mode continuation line ("   2304x1296 [56.03 fps ...")
// from a log line, both of which may hold brackets.
func modeLine(line string) bool {
	s := strings.TrimSpace(line)
	return len(s) > 0 && s[0] >= '0' && s[0] <= '9'
}

// formatDepth reads the bit depth from a libcamera raw format name:
// SRGGB10_CSI2P is 10, SRGGB8 is 8, R12_CSI2P (mono) is 12.
func formatDepth(f string) int {
	n, _ := strconv.Atoi(digitsRE.FindString(f))
	return n
}
