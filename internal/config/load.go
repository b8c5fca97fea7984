package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// ErrHelp is returned by Load when -h or --help was given.
var ErrHelp = flag.ErrHelp

// Load builds the configuration from defaults, the file named by --config
// (or CAMFEED_CONFIG), the environment and args (without the program name).
// It validates the result. It prints nothing: every problem, and -h, is
// its error (the io.Writer is no longer used).
func Load(args []string, environ []string, _ io.Writer) (*Config, error) {
	fs := flag.NewFlagSet("camfeed", flag.ContinueOnError)
	// Errors and help are camfeed's to print (cmd/camfeed): one line with
	// a suggestion, not the error, the usage and the error again.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	path := fs.String("config", envLookup(environ, "CAMFEED_CONFIG"), "")
	all := settings()
	flagVals := map[string]*string{}
	for _, s := range all {
		v := new(string)
		flagVals[s.flag] = v
		val := func(x string) error {
			if s.isList() {
				x = strings.TrimPrefix(*v+","+x, ",") // repeatable
			}
			if s.isPush() {
				x = strings.TrimSpace(*v + " " + x) // repeatable; URLs may hold commas
			}
			*v = x
			return nil
		}
		for _, n := range append([]string{s.flag}, s.aliases()...) {
			if s.isBool() {
				fs.BoolFunc(n, s.usage, val)
			} else {
				fs.Func(n, s.usage, val)
			}
		}
	}
	if err := fs.Parse(args); err != nil {
		return nil, flagError(err, fs)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (flags start with --)", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) {
		name := f.Name
		if to, ok := flagAliases[name]; ok {
			name = to
		}
		set[name] = true
	})

	c := Default()
	if *path != "" {
		data, err := os.ReadFile(*path)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		if err := c.decode(data); err != nil {
			return nil, fmt.Errorf("config %s: %w", *path, err)
		}
	}
	for _, s := range all {
		for _, env := range envNames(s) {
			if v, ok := envLookupOK(environ, env); ok {
				if err := s.set(c, v); err != nil {
					return nil, fmt.Errorf("%s: %w", env, err)
				}
			}
		}
	}
	for _, s := range all {
		if set[s.flag] {
			if err := s.set(c, *flagVals[s.flag]); err != nil {
				return nil, fmt.Errorf("--%s: %w", s.flag, err)
			}
		}
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// decode applies a YAML document over c. Unknown keys and values of the
// wrong type are errors that name the key and its line; feeds given in
// the file replace the default.
func (c *Config) decode(data []byte) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	var file Config
	file = *c
	file.Feeds = nil
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&file); err != nil && !errors.Is(err, io.EOF) {
		return cleanYAMLError(err, data)
	}
	if file.Feeds == nil {
		file.Feeds = c.Feeds
	}
	*c = file
	return nil
}

var (
	yamlLine     = regexp.MustCompile(`^line (\d+): `)
	yamlUnknown  = regexp.MustCompile(`^field (\S+) not found in type (\S+)$`)
	yamlWrongVal = regexp.MustCompile("^cannot unmarshal !!\\w+ `(.*)` into (\\S+)$")
)

// cleanYAMLError rewrites yaml.v3's errors in plain words with the key
// they are about: "line 3: unknown key "sauce"", with a suggestion when a
// key is close; "line 5: feeds.cam.width: "wide" is not a whole number".
func cleanYAMLError(err error, data []byte) error {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	keys := keysByLine(data)
	for i, m := range msgs {
		line := 0
		rest := strings.TrimPrefix(m, "yaml: ")
		if sm := yamlLine.FindStringSubmatch(rest); sm != nil {
			line, _ = strconv.Atoi(sm[1])
			rest = rest[len(sm[0]):]
		}
		switch sm := yamlUnknown.FindStringSubmatch(rest); {
		case sm != nil:
			rest = "unknown key " + strconv.Quote(sm[1])
			if s := Suggest(sm[1], keysOf(sm[2])); s != "" {
				rest += "; did you mean " + s + "?"
			}
		case line > 0 && keys[line] != "":
			if vm := yamlWrongVal.FindStringSubmatch(rest); vm != nil {
				rest = strconv.Quote(vm[1]) + " is not " + typeWords(vm[2])
			}
			rest = keys[line] + ": " + rest
		}
		if line > 0 {
			rest = fmt.Sprintf("line %d: %s", line, rest)
		}
		msgs[i] = rest
	}
	return errors.New(strings.Join(msgs, "; "))
}

// typeWords says in words what a Go type holds.
func typeWords(t string) string {
	switch {
	case t == "time.Duration":
		return "a duration such as 500ms or 5s"
	case strings.HasPrefix(t, "int") || strings.HasPrefix(t, "uint"):
		return "a whole number"
	case strings.HasPrefix(t, "float"):
		return "a number"
	case t == "bool":
		return "true or false"
	case t == "string":
		return "text"
	case strings.HasPrefix(t, "[]"):
		return "a list, such as [a, b]"
	}
	return "a " + t
}

// keysOf lists the keys of the struct type that yaml.v3 names in an
// unknown-key error ("config.Feed", "limits.Config").
func keysOf(typeName string) []string {
	var out []string
	var walk func(t reflect.Type)
	seen := map[reflect.Type]bool{}
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || seen[t] || t == typeSize {
			return
		}
		seen[t] = true
		match := t.String() == typeName
		for i := range t.NumField() {
			f := t.Field(i)
			name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if match && name != "-" && opts != "inline" && f.IsExported() {
				out = append(out, name)
			}
			if opts == "inline" && match {
				for j := range f.Type.NumField() {
					n, _, _ := strings.Cut(f.Type.Field(j).Tag.Get("yaml"), ",")
					out = append(out, n)
				}
			}
			walk(f.Type)
		}
	}
	walk(reflect.TypeFor[Config]())
	return out
}

// keysByLine maps each line of a YAML document to the dotted key whose
// value starts there ("feeds.cam.width"; list items as "users[1].name").
func keysByLine(data []byte) map[int]string {
	out := map[int]string{}
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil {
		return out
	}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := k.Value
				if path != "" {
					p = path + "." + k.Value
				}
				if _, ok := out[v.Line]; !ok && inline(v) {
					out[v.Line] = p
				}
				walk(v, p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := fmt.Sprintf("%s[%d]", path, i)
				if _, ok := out[c.Line]; !ok && inline(c) {
					out[c.Line] = p
				}
				walk(c, p)
			}
		}
	}
	walk(&doc, "")
	return out
}

// inline reports a value written on its key's line: a scalar or a flow
// collection ([a, b], {k: v}), not a block that starts on the next line.
func inline(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode || n.Style&yaml.FlowStyle != 0 }

// flagError puts the flag package's errors in plain words, with the flag
// that was probably meant.
func flagError(err error, fs *flag.FlagSet) error {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: "); ok {
		name = strings.TrimLeft(name, "-")
		var names []string
		fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
		msg = "unknown flag --" + name
		if s := Suggest(name, names); s != "" {
			msg += "; did you mean --" + s + "?"
		}
		return fmt.Errorf("%s (camfeed --help lists them)", msg)
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: "); ok {
		return fmt.Errorf("--%s needs a value", strings.TrimLeft(name, "-"))
	}
	if errors.Is(err, flag.ErrHelp) {
		return ErrHelp
	}
	return err
}

// envNames are the variables that set s: its own, and its aliases'.
func envNames(s setting) []string {
	var names []string
	for _, alias := range s.aliases() {
		names = append(names, envName(alias))
	}
	return append(names, s.env())
}

func envLookup(environ []string, key string) string {
	v, _ := envLookupOK(environ, key)
	return v
}

func envLookupOK(environ []string, key string) (string, bool) {
	for i := len(environ) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(environ[i], "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}
