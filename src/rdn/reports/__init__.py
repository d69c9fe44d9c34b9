"""The network picture: needs against pledges, referrals, departures and arrivals; the member view; the public
transparency page; exports (CSV with HXL, XLSX, the quarterly report as a page and a PDF); weekly digests."""
