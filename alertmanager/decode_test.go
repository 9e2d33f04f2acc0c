package alertmanager

import "bytes"

// decodeMessage decodes a whole webhook body, alerts included.
func decodeMessage(body []byte) (*Message, error) {
	var alerts []Alert
	m, err := DecodeAlerts(bytes.NewReader(body), func(a Alert) error {
		alerts = append(alerts, a)
		return nil
	})
	if err != nil {
		return nil, err
	}
	m.Alerts = alerts
	return m, nil
}

// matchAll matches every alert of msg.
func matchAll(m Matcher, msg *Message) []Match {
	out := make([]Match, 0, len(msg.Alerts))
	for _, a := range msg.Alerts {
		out = append(out, m.MatchAlert(a))
	}
	return out
}
