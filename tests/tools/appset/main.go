// Command appset renders an ApplicationSet's template for one generator's parameters, as
// Argo CD's ApplicationSet controller does with goTemplate: true, so that the tests can
// check what deploy/argocd/applicationset.yaml makes for a cluster without an Argo CD.
//
// It follows argo-cd v3.5's applicationset/utils (Render.Replace): every string of the
// template is a Go text/template of its own, with sprig's generic functions minus env,
// expandenv and getHostByName, and the ApplicationSet's goTemplateOptions. Argo CD's own
// additions (normalize, slugify, toYaml, fromYaml) are not here; the shipped template
// does not use them, and an unknown function fails the render, so a use would be seen.
//
// Input on stdin: {"template": <object>, "params": <object>, "options": [<string>]}.
// Output on stdout: the rendered template. A template error exits 1 with the error.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"text/template"

	"github.com/Masterminds/sprig/v3"
)

type request struct {
	Template any            `json:"template"`
	Params   map[string]any `json:"params"`
	Options  []string       `json:"options"`
}

func functions() template.FuncMap {
	funcs := sprig.GenericFuncMap()
	for _, name := range []string{"env", "expandenv", "getHostByName"} {
		delete(funcs, name)
	}
	return funcs
}

func render(value any, params map[string]any, options []string) (any, error) {
	switch v := value.(type) {
	case string:
		parsed, err := template.New("field").Funcs(functions()).Option(options...).Parse(v)
		if err != nil {
			return nil, fmt.Errorf("failed to parse template %s: %w", v, err)
		}
		var out bytes.Buffer
		if err := parsed.Execute(&out, params); err != nil {
			return nil, fmt.Errorf("failed to execute go template %s: %w", v, err)
		}
		return out.String(), nil
	case map[string]any:
		rendered := make(map[string]any, len(v))
		for key, item := range v {
			r, err := render(item, params, options)
			if err != nil {
				return nil, err
			}
			rendered[key] = r
		}
		return rendered, nil
	case []any:
		rendered := make([]any, len(v))
		for i, item := range v {
			r, err := render(item, params, options)
			if err != nil {
				return nil, err
			}
			rendered[i] = r
		}
		return rendered, nil
	default:
		return v, nil
	}
}

func main() {
	var req request
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		fmt.Fprintln(os.Stderr, "appset: reading the request:", err)
		os.Exit(2)
	}
	out, err := render(req.Template, req.Params, req.Options)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, "appset:", err)
		os.Exit(2)
	}
}
