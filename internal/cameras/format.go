package cameras

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Format writes cams for `camfeed cameras`: a readable listing, or with
// asJSON an indented JSON array (always an array, [] when empty).
func Format(w io.Writer, cams []Camera, asJSON bool) error {
	if asJSON {
		if cams == nil {
			cams = []Camera{}
		}
		e := json.NewEncoder(w)
		e.SetIndent("", "  ")
		return e.Encode(cams)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range cams {
		if c.Kind == KindCSI {
			desc := c.Sensor
			if c.Model != "" {
				desc += ", " + c.Model
			}
			if c.Width > 0 {
				desc += fmt.Sprintf(", %dx%d", c.Width, c.Height)
				if c.BitDepth > 0 {
					desc += fmt.Sprintf(" %d-bit", c.BitDepth)
				}
				if c.Bayer != "" {
					desc += " " + c.Bayer
				}
			}
			fmt.Fprintf(tw, "camera %d: %s\n", c.Index, desc)
			fmt.Fprintf(tw, "  %s\n", c.Path)
			fmt.Fprintf(tw, "  config: source: rpicam, camera: %d, mode: one of\n", c.Index)
			for _, m := range c.Modes {
				fps := "\t"
				if m.MaxFPS > 0 {
					fps = fmt.Sprintf("%.2f fps\t", m.MaxFPS)
				}
				crop := ""
				if m.Crop != "" {
					crop = "crop " + m.Crop
				}
				fmt.Fprintf(tw, "    %s\t%dx%d\t%d-bit\t%s%s\n", m.Spec(), m.Width, m.Height, m.BitDepth, fps, crop)
			}
			continue
		}
		enc := "no H.264 from the camera: camfeed needs ffmpeg to encode it"
		if c.H264 {
			enc = "H.264 from the camera"
		}
		if len(c.Formats) > 0 {
			enc += " (" + strings.Join(c.Formats, ", ") + ")"
		}
		fmt.Fprintf(tw, "USB camera %s: %s, %s\n", c.Path, c.Sensor, enc)
		fmt.Fprintf(tw, "  config: source: %q\n", c.Source)
	}
	return tw.Flush()
}
