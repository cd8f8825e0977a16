// Command selectors prints what PromQL expressions read, so that tests can hold each one
// against the series a running operator really exports.
//
// It reads a JSON object of named expressions on stdin and writes, for each name, the
// vector selectors (metric name and label matchers) and the groupings (the labels of
// by, without, on and ignoring clauses, with the metrics each grouping applies to), as
// Prometheus's own parser sees them: a regular expression over the text would miss
// selectors written without a metric name or with the name as a matcher.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// Matcher is one label matcher of a selector.
type Matcher struct {
	Label string `json:"label"`
	Op    string `json:"op"`
	Value string `json:"value"`
}

// Selector is one vector selector: the metric it names and its matchers.
type Selector struct {
	Metric   string    `json:"metric"`
	Matchers []Matcher `json:"matchers"`
}

// Grouping is a clause that names labels, with the metrics of the selectors under it.
type Grouping struct {
	Clause  string   `json:"clause"`
	Labels  []string `json:"labels"`
	Metrics []string `json:"metrics"`
}

// Result is what one expression reads, or why it could not be parsed.
type Result struct {
	Selectors []Selector `json:"selectors"`
	Groupings []Grouping `json:"groupings"`
	Error     string     `json:"error,omitempty"`
}

func metricsUnder(node parser.Node) []string {
	seen := map[string]bool{}
	parser.Inspect(node, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			seen[metricName(vs)] = true
		}
		return nil
	})
	names := make([]string, 0, len(seen))
	for name := range seen {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

func metricName(vs *parser.VectorSelector) string {
	if vs.Name != "" {
		return vs.Name
	}
	for _, m := range vs.LabelMatchers {
		if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
			return m.Value
		}
	}
	return ""
}

func inspect(expr parser.Expr) Result {
	result := Result{Selectors: []Selector{}, Groupings: []Grouping{}}
	parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
		switch n := node.(type) {
		case *parser.VectorSelector:
			selector := Selector{Metric: metricName(n), Matchers: []Matcher{}}
			for _, m := range n.LabelMatchers {
				if m.Name == labels.MetricName {
					continue
				}
				selector.Matchers = append(
					selector.Matchers, Matcher{Label: m.Name, Op: m.Type.String(), Value: m.Value},
				)
			}
			result.Selectors = append(result.Selectors, selector)
		case *parser.AggregateExpr:
			if len(n.Grouping) > 0 {
				clause := "by"
				if n.Without {
					clause = "without"
				}
				result.Groupings = append(result.Groupings, Grouping{
					Clause: clause, Labels: n.Grouping, Metrics: metricsUnder(n.Expr),
				})
			}
		case *parser.BinaryExpr:
			if n.VectorMatching != nil && len(n.VectorMatching.MatchingLabels) > 0 {
				clause := "on"
				if !n.VectorMatching.On {
					clause = "ignoring"
				}
				result.Groupings = append(result.Groupings, Grouping{
					Clause:  clause,
					Labels:  n.VectorMatching.MatchingLabels,
					Metrics: append(metricsUnder(n.LHS), metricsUnder(n.RHS)...),
				})
			}
		}
		return nil
	})
	return result
}

func main() {
	var exprs map[string]string
	if err := json.NewDecoder(os.Stdin).Decode(&exprs); err != nil {
		fmt.Fprintln(os.Stderr, "selectors: stdin is not a JSON object of strings:", err)
		os.Exit(2)
	}
	// The parser's defaults are those of promtool and of a Prometheus server started
	// without feature flags.
	promql := parser.NewParser(parser.Options{})
	out := map[string]Result{}
	for name, text := range exprs {
		expr, err := promql.ParseExpr(text)
		if err != nil {
			out[name] = Result{Selectors: []Selector{}, Groupings: []Grouping{}, Error: err.Error()}
			continue
		}
		out[name] = inspect(expr)
	}
	encoder := json.NewEncoder(os.Stdout)
	encoder.SetIndent("", "  ")
	if err := encoder.Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, "selectors:", err)
		os.Exit(1)
	}
}
