package telemetry

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// newResource describes this process. Later sources win: our defaults, then
// host and process detection, then the Kubernetes downward-API variables,
// then OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME.
//
// The process command line is left out on purpose: flags may carry secrets.
func newResource(ctx context.Context, serviceVersion string, logger *slog.Logger) (*resource.Resource, error) {
	attrs := []attribute.KeyValue{semconv.ServiceName(defaultServiceName)}
	if serviceVersion != "" {
		attrs = append(attrs, semconv.ServiceVersion(serviceVersion))
	}
	detected, err := resource.New(ctx,
		resource.WithAttributes(attrs...),
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithOSType(),
		resource.WithProcessPID(),
		resource.WithProcessExecutableName(),
		resource.WithProcessRuntimeName(),
		resource.WithProcessRuntimeVersion(),
		resource.WithProcessRuntimeDescription(),
		resource.WithAttributes(k8sAttributes(os.Getenv)...),
	)
	if err != nil {
		// Detection failures (say, no hostname) cost an attribute, not the telemetry.
		logger.Warn("telemetry resource detection incomplete", "error", err)
	}

	fromEnv, err := resource.New(ctx, resource.WithFromEnv())
	if err != nil {
		return nil, fmt.Errorf("%w: OTEL_RESOURCE_ATTRIBUTES=%q: %w", ErrInvalidConfig, os.Getenv("OTEL_RESOURCE_ATTRIBUTES"), err)
	}
	merged, err := resource.Merge(detected, fromEnv)
	if err != nil {
		return nil, fmt.Errorf("telemetry: merge resources: %w", err)
	}
	return merged, nil
}

// k8sAttributes maps the variables the pod spec fills from the downward API
// to Kubernetes resource attributes, skipping unset ones.
func k8sAttributes(getenv func(string) string) []attribute.KeyValue {
	var attrs []attribute.KeyValue
	for _, m := range []struct {
		env  string
		attr func(string) attribute.KeyValue
	}{
		{envPodName, semconv.K8SPodName},
		{envPodNamespace, semconv.K8SNamespaceName},
		{envNodeName, semconv.K8SNodeName},
		{envPodUID, semconv.K8SPodUID},
		{envContainerName, semconv.K8SContainerName},
	} {
		if v := getenv(m.env); v != "" {
			attrs = append(attrs, m.attr(v))
		}
	}
	return attrs
}
