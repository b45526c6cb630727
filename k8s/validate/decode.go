package validate

import (
	"errors"
	"fmt"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
)

// ErrDecode marks an object that does not decode strictly into its Go type:
// an unknown or misspelt field, a wrong type, or a kind no scheme knows.
var ErrDecode = errors.New("strict decode failed")

// Decoder turns rendered objects into their typed Go structs, rejecting
// anything the types do not have a field for.
type Decoder struct {
	codec runtime.Decoder
}

// NewDecoder knows every built-in API group of the k8s.io/api version this
// module requires, plus monitoring.coreos.com/v1 (ServiceMonitor,
// PrometheusRule), whose CRDs a plain API server does not have.
func NewDecoder() (*Decoder, error) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("building scheme: %w", err)
	}
	if err := monitoringv1.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("building scheme: %w", err)
	}
	ser := json.NewSerializerWithOptions(json.DefaultMetaFactory, s, s, json.SerializerOptions{Strict: true})
	return &Decoder{codec: ser}, nil
}

// Decode returns u as its typed object.
func (d *Decoder) Decode(u *unstructured.Unstructured) (runtime.Object, error) {
	data, err := u.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrDecode, ID(u), err)
	}
	obj, _, err := d.codec.Decode(data, nil, nil)
	if err != nil {
		// A strict-decoding error still returns the object; either way it fails.
		return nil, fmt.Errorf("%w: %s: %w", ErrDecode, ID(u), err)
	}
	return obj, nil
}
