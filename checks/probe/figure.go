package probe

import "encoding/json"

// Figure is one labelled value a run measured beyond its duration, such as
// the negotiated protocol, the path MTU, the loss or the throughput.
// Probers append them to Result.Figures in the order a person should read
// them; /status shows and serves them as they are.
type Figure struct {
	// Name is a short snake_case label, stable across runs: "protocol", "path_mtu", "loss", "throughput".
	Name string `json:"name"`
	// Text is a value that is not a number, such as "h2"; empty for numbers.
	Text string `json:"text,omitempty"`
	// Value is the number when Text is empty.
	Value float64 `json:"value"`
	// Unit is the UCUM unit of Value, as OpenTelemetry writes them: "By", "1" (a ratio), "bit/s", "s".
	Unit string `json:"unit,omitempty"`
}

// MarshalJSON writes a text figure as name and text, and a number as name, value and unit.
func (f Figure) MarshalJSON() ([]byte, error) {
	if f.Text != "" {
		return json.Marshal(struct {
			Name string `json:"name"`
			Text string `json:"text"`
		}{f.Name, f.Text})
	}
	type number Figure // without this method
	return json.Marshal(number(f))
}
