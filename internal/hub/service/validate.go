package service

import (
	"regexp"
	"unicode"

	"github.com/outpost-edge/outpost/internal/errs"
)

var (
	dnsLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	// Host IDs may carry dots (serial numbers, FQDNs) but stay DNS-safe.
	hostIDPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$`)
	labelKey      = regexp.MustCompile(`^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$`)
)

const (
	maxLabels          = 64
	maxLabelValueBytes = 253
	maxDescription     = 1024
)

func validName(fl *errs.FieldList, field, name string) {
	if !dnsLabel.MatchString(name) {
		fl.Add(field, "%q must be a DNS label: lower-case letters, digits and '-', at most 63 characters", name)
	}
}

func validHostID(fl *errs.FieldList, field, id string) {
	if !hostIDPattern.MatchString(id) {
		fl.Add(field, "host ID %q must be lower-case letters, digits, '-' and '.', at most 63 characters, starting and ending with a letter or digit", id)
	}
}

func validLabels(fl *errs.FieldList, field string, labels map[string]string) {
	if len(labels) > maxLabels {
		fl.Add(field, "at most %d labels", maxLabels)
	}
	for k, v := range labels {
		if !labelKey.MatchString(k) {
			fl.Add(field+"."+k, "label key must be [prefix/]name with letters, digits, '-', '_' and '.'")
		}
		if len(v) > maxLabelValueBytes {
			fl.Add(field+"."+k, "label value longer than %d bytes", maxLabelValueBytes)
		}
		for _, r := range v {
			if unicode.IsControl(r) {
				fl.Add(field+"."+k, "label value has a control character")
				break
			}
		}
	}
}

func validDescription(fl *errs.FieldList, field, d string) {
	if len(d) > maxDescription {
		fl.Add(field, "longer than %d bytes", maxDescription)
	}
}
