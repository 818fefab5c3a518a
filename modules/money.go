package modules

import "strings"

// Money is an amount in integer minor units of an ISO 4217 currency (cents
// of EUR, yen of JPY): never a float. It is how every module's API and
// events carry money: {"amount":1999,"currency":"EUR"}.
type Money struct {
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

// MaxAmount bounds an amount a module accepts (10^15 minor units), so
// that sums of many never overflow an int64.
const MaxAmount = 1_000_000_000_000_000

// ValidCurrency reports whether code is an active ISO 4217 code, upper
// case as the standard writes them.
func ValidCurrency(code string) bool { return iso4217[code] }

// CheckMoney returns what is wrong with m as a price or a limit (a
// positive amount, or zero when zeroOK), or "" when nothing is.
func CheckMoney(m Money, zeroOK bool) string {
	switch {
	case !ValidCurrency(m.Currency):
		return "currency must be an ISO 4217 code such as EUR"
	case m.Amount < 0 || (m.Amount == 0 && !zeroOK):
		if zeroOK {
			return "amount must be 0 or more, in minor units"
		}
		return "amount must be more than 0, in minor units"
	case m.Amount > MaxAmount:
		return "amount must be at most 10^15 minor units"
	}
	return ""
}

// iso4217 lists the active ISO 4217 currency codes.
var iso4217 = func() map[string]bool {
	codes := `AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN
BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD
FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF
KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN
NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP
SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED
VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG`
	m := map[string]bool{}
	for _, c := range strings.Fields(codes) {
		m[c] = true
	}
	return m
}()
