"""The benchmark's Internet: Japanese cities, ISPs and mobile carriers, foreign networks, hosting providers,
VPN exits, iCloud Private Relay egress and Tor exits, each with an address plan, and the MaxMind-format
City, ASN and Anonymous-IP databases that describe them (written with :mod:`authguard.testing`).

The databases are deliberately imperfect, as real ones are: fixed-line blocks are sometimes located in the
wrong city or only to the country, mobile CGNAT blocks sit at a carrier's point of presence with a radius of
100 to 1,000 km, and only part of the hosting, VPN, relay and residential-proxy space is flagged in the
Anonymous-IP database.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from authguard.testing import ANONYMOUS_FILENAME, GeoNetwork, write_geoip_databases

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class City:
    """A city with real coordinates; ``region`` and ``hub`` only matter for Japanese cities."""

    name: str
    country: str
    lat: float
    lon: float
    tz: str
    population: float = 1.0
    region: str = ""
    hub: str = ""


def _jp(name: str, lat: float, lon: float, pop: float, region: str, hub: str = "") -> City:
    return City(name, "JP", lat, lon, "Asia/Tokyo", pop, region, hub or name)


#: Japanese cities, population in units of 10,000, with the city commuters from there mostly work in.
JP_CITIES: tuple[City, ...] = (
    _jp("Tokyo", 35.6895, 139.6917, 970, "kanto"),
    _jp("Yokohama", 35.4437, 139.6380, 377, "kanto", "Tokyo"),
    _jp("Osaka", 34.6937, 135.5023, 275, "kansai"),
    _jp("Nagoya", 35.1815, 136.9066, 233, "chubu"),
    _jp("Sapporo", 43.0618, 141.3545, 197, "hokkaido"),
    _jp("Fukuoka", 33.5904, 130.4017, 161, "kyushu"),
    _jp("Kawasaki", 35.5308, 139.7029, 154, "kanto", "Tokyo"),
    _jp("Kobe", 34.6901, 135.1955, 151, "kansai", "Osaka"),
    _jp("Kyoto", 35.0116, 135.7681, 145, "kansai"),
    _jp("Saitama", 35.8617, 139.6455, 134, "kanto", "Tokyo"),
    _jp("Hiroshima", 34.3853, 132.4553, 119, "chugoku"),
    _jp("Sendai", 38.2682, 140.8694, 109, "tohoku"),
    _jp("Chiba", 35.6073, 140.1063, 98, "kanto", "Tokyo"),
    _jp("Kitakyushu", 33.8835, 130.8752, 92, "kyushu"),
    _jp("Sakai", 34.5733, 135.4830, 82, "kansai", "Osaka"),
    _jp("Niigata", 37.9162, 139.0364, 77, "chubu"),
    _jp("Hamamatsu", 34.7108, 137.7261, 79, "chubu"),
    _jp("Kumamoto", 32.8031, 130.7079, 73, "kyushu"),
    _jp("Sagamihara", 35.5714, 139.3733, 72, "kanto", "Tokyo"),
    _jp("Okayama", 34.6551, 133.9195, 72, "chugoku"),
    _jp("Shizuoka", 34.9756, 138.3828, 68, "chubu"),
    _jp("Funabashi", 35.6947, 139.9829, 64, "kanto", "Tokyo"),
    _jp("Hachioji", 35.6664, 139.3160, 58, "kanto", "Tokyo"),
    _jp("Kagoshima", 31.5966, 130.5571, 59, "kyushu"),
    _jp("Utsunomiya", 36.5551, 139.8828, 52, "kanto"),
    _jp("Matsuyama", 33.8392, 132.7657, 50, "shikoku"),
    _jp("Kanazawa", 36.5613, 136.6562, 46, "chubu"),
    _jp("Oita", 33.2382, 131.6126, 48, "kyushu"),
    _jp("Takamatsu", 34.3428, 134.0466, 42, "shikoku"),
    _jp("Toyama", 36.6953, 137.2113, 41, "chubu"),
    _jp("Gifu", 35.4233, 136.7607, 40, "chubu", "Nagoya"),
    _jp("Nagasaki", 32.7503, 129.8779, 40, "kyushu"),
    _jp("Miyazaki", 31.9077, 131.4202, 40, "kyushu"),
    _jp("Nagano", 36.6485, 138.1948, 37, "chubu"),
    _jp("Wakayama", 34.2260, 135.1675, 36, "kansai"),
    _jp("Nara", 34.6851, 135.8048, 35, "kansai", "Osaka"),
    _jp("Otsu", 35.0045, 135.8686, 34, "kansai", "Kyoto"),
    _jp("Maebashi", 36.3895, 139.0634, 33, "kanto"),
    _jp("Asahikawa", 43.7706, 142.3650, 33, "hokkaido"),
    _jp("Naha", 26.2124, 127.6809, 32, "okinawa"),
    _jp("Kochi", 33.5597, 133.5311, 32, "shikoku"),
    _jp("Akita", 39.7200, 140.1024, 30, "tohoku"),
    _jp("Morioka", 39.7036, 141.1527, 28, "tohoku"),
    _jp("Aomori", 40.8246, 140.7406, 27, "tohoku"),
    _jp("Fukushima", 37.7608, 140.4747, 27, "tohoku"),
    _jp("Mito", 36.3418, 140.4468, 27, "kanto"),
    _jp("Kofu", 35.6620, 138.5683, 19, "chubu"),
)

#: The mobile carriers' (and Private Relay's) point of presence serving each Japanese region.
REGION_POP: dict[str, str] = {
    "hokkaido": "Sapporo",
    "tohoku": "Sendai",
    "kanto": "Tokyo",
    "chubu": "Nagoya",
    "kansai": "Osaka",
    "chugoku": "Hiroshima",
    "shikoku": "Takamatsu",
    "kyushu": "Fukuoka",
    "okinawa": "Naha",
}

#: Where MaxMind puts an address it only knows to be Japanese.
JP_CENTROID = (35.69, 139.69)


def _c(name: str, country: str, lat: float, lon: float, tz: str) -> City:
    return City(name, country, lat, lon, tz)


FOREIGN_CITIES: tuple[City, ...] = (
    _c("Seoul", "KR", 37.5665, 126.9780, "Asia/Seoul"),
    _c("Busan", "KR", 35.1796, 129.0756, "Asia/Seoul"),
    _c("Taipei", "TW", 25.0330, 121.5654, "Asia/Taipei"),
    _c("Hong Kong", "HK", 22.3193, 114.1694, "Asia/Hong_Kong"),
    _c("Singapore", "SG", 1.3521, 103.8198, "Asia/Singapore"),
    _c("Bangkok", "TH", 13.7563, 100.5018, "Asia/Bangkok"),
    _c("Ho Chi Minh City", "VN", 10.8231, 106.6297, "Asia/Ho_Chi_Minh"),
    _c("Hanoi", "VN", 21.0278, 105.8342, "Asia/Ho_Chi_Minh"),
    _c("Shanghai", "CN", 31.2304, 121.4737, "Asia/Shanghai"),
    _c("Beijing", "CN", 39.9042, 116.4074, "Asia/Shanghai"),
    _c("Shenzhen", "CN", 22.5431, 114.0579, "Asia/Shanghai"),
    _c("Manila", "PH", 14.5995, 120.9842, "Asia/Manila"),
    _c("Jakarta", "ID", -6.2088, 106.8456, "Asia/Jakarta"),
    _c("Kuala Lumpur", "MY", 3.1390, 101.6869, "Asia/Kuala_Lumpur"),
    _c("Mumbai", "IN", 19.0760, 72.8777, "Asia/Kolkata"),
    _c("Honolulu", "US", 21.3069, -157.8583, "Pacific/Honolulu"),
    _c("Los Angeles", "US", 34.0522, -118.2437, "America/Los_Angeles"),
    _c("San Francisco", "US", 37.7749, -122.4194, "America/Los_Angeles"),
    _c("Seattle", "US", 47.6062, -122.3321, "America/Los_Angeles"),
    _c("New York", "US", 40.7128, -74.0060, "America/New_York"),
    _c("Ashburn", "US", 39.0438, -77.4874, "America/New_York"),
    _c("Chicago", "US", 41.8781, -87.6298, "America/Chicago"),
    _c("Dallas", "US", 32.7767, -96.7970, "America/Chicago"),
    _c("Toronto", "CA", 43.6532, -79.3832, "America/Toronto"),
    _c("Mexico City", "MX", 19.4326, -99.1332, "America/Mexico_City"),
    _c("Sao Paulo", "BR", -23.5505, -46.6333, "America/Sao_Paulo"),
    _c("London", "GB", 51.5074, -0.1278, "Europe/London"),
    _c("Paris", "FR", 48.8566, 2.3522, "Europe/Paris"),
    _c("Frankfurt", "DE", 50.1109, 8.6821, "Europe/Berlin"),
    _c("Berlin", "DE", 52.5200, 13.4050, "Europe/Berlin"),
    _c("Nuremberg", "DE", 49.4521, 11.0767, "Europe/Berlin"),
    _c("Amsterdam", "NL", 52.3676, 4.9041, "Europe/Amsterdam"),
    _c("Stockholm", "SE", 59.3293, 18.0686, "Europe/Stockholm"),
    _c("Helsinki", "FI", 60.1699, 24.9384, "Europe/Helsinki"),
    _c("Moscow", "RU", 55.7558, 37.6173, "Europe/Moscow"),
    _c("Kyiv", "UA", 50.4501, 30.5234, "Europe/Kyiv"),
    _c("Sydney", "AU", -33.8688, 151.2093, "Australia/Sydney"),
    _c("Melbourne", "AU", -37.8136, 144.9631, "Australia/Melbourne"),
    _c("Auckland", "NZ", -36.8485, 174.7633, "Pacific/Auckland"),
    _c("Johannesburg", "ZA", -26.2041, 28.0473, "Africa/Johannesburg"),
    _c("Lagos", "NG", 6.5244, 3.3792, "Africa/Lagos"),
)


@dataclass(frozen=True)
class Operator:
    """An autonomous system: an ISP, a mobile carrier, a hosting or VPN provider."""

    key: str
    asn: int
    org: str
    country: str = "JP"
    share: float = 1.0
    regions: tuple[str, ...] = ()  # Japanese regions served; empty: nationwide


#: Japanese fixed-line ISPs with rough market shares (FTTH and cable).
JP_FIXED_ISPS: tuple[Operator, ...] = (
    Operator("ocn", 4713, "NTT Communications Corporation", share=0.22),
    Operator("kddi", 2516, "KDDI CORPORATION", share=0.16),
    Operator("softbank", 17676, "SoftBank Corp.", share=0.17),
    Operator("sonet", 2527, "Sony Network Communications Inc.", share=0.10),
    Operator("biglobe", 2518, "BIGLOBE Inc.", share=0.08),
    Operator("iij", 2497, "Internet Initiative Japan Inc.", share=0.05),
    Operator("asahinet", 4685, "Asahi Net, Inc.", share=0.03),
    Operator("jcom", 9824, "JCOM Co., Ltd.", share=0.08, regions=("kanto", "kansai", "kyushu", "hokkaido")),
    Operator("eo", 17511, "OPTAGE Inc.", share=0.25, regions=("kansai",)),
)

#: Japanese mobile carriers; au and SoftBank share their AS with the group's fixed-line ISP.
JP_CARRIERS: tuple[Operator, ...] = (
    Operator("docomo", 9605, "NTT DOCOMO, INC.", share=0.37),
    Operator("au", 2516, "KDDI CORPORATION", share=0.28),
    Operator("softbank_mobile", 17676, "SoftBank Corp.", share=0.22),
    Operator("rakuten", 138384, "Rakuten Mobile, Inc.", share=0.08),
    Operator("iijmio", 2497, "Internet Initiative Japan Inc.", share=0.05),
)

#: Points of presence of each carrier (the smaller ones only exit in Tokyo and Osaka).
CARRIER_POPS: dict[str, tuple[str, ...]] = {
    "docomo": tuple(REGION_POP.values()),
    "au": tuple(REGION_POP.values()),
    "softbank_mobile": ("Sapporo", "Sendai", "Tokyo", "Nagoya", "Osaka", "Hiroshima", "Fukuoka"),
    "rakuten": ("Tokyo", "Osaka"),
    "iijmio": ("Tokyo", "Osaka"),
}

#: Foreign residential ISPs by country.
FOREIGN_ISPS: tuple[Operator, ...] = (
    Operator("comcast", 7922, "COMCAST-7922", "US"),
    Operator("charter", 20115, "CHARTER-20115", "US"),
    Operator("att", 7018, "ATT-INTERNET4", "US"),
    Operator("kt", 4766, "Korea Telecom", "KR"),
    Operator("skb", 9318, "SK Broadband Co Ltd", "KR"),
    Operator("hinet", 3462, "Data Communication Business Group", "TW"),
    Operator("hkt", 4760, "HKT Limited", "HK"),
    Operator("hkbn", 9269, "Hong Kong Broadband Network Ltd.", "HK"),
    Operator("singnet", 9506, "Singtel Fibre Broadband", "SG"),
    Operator("true", 7470, "TRUE INTERNET Co.,Ltd.", "TH"),
    Operator("3bb", 45758, "Triple T Broadband Public Company Limited", "TH"),
    Operator("viettel", 7552, "Viettel Group", "VN"),
    Operator("vnpt", 45899, "VNPT Corp", "VN"),
    Operator("chinanet", 4134, "CHINANET-BACKBONE", "CN"),
    Operator("unicom", 4837, "CHINA UNICOM China169 Backbone", "CN"),
    Operator("pldt", 9299, "Philippine Long Distance Telephone Company", "PH"),
    Operator("telkom_id", 7713, "PT Telekomunikasi Indonesia", "ID"),
    Operator("tm", 4788, "TM Net, Internet Service Provider", "MY"),
    Operator("airtel", 24560, "Bharti Airtel Ltd., Telemedia Services", "IN"),
    Operator("rogers", 812, "ROGERS-COMMUNICATIONS", "CA"),
    Operator("telmex", 8151, "UNINET", "MX"),
    Operator("claro_br", 28573, "Claro NXT Telecomunicacoes Ltda", "BR"),
    Operator("bt", 2856, "British Telecommunications PLC", "GB"),
    Operator("virgin", 5089, "Virgin Media Limited", "GB"),
    Operator("orange", 3215, "Orange", "FR"),
    Operator("free", 12322, "Free SAS", "FR"),
    Operator("dtag", 3320, "Deutsche Telekom AG", "DE"),
    Operator("vodafone_de", 3209, "Vodafone GmbH", "DE"),
    Operator("kpn", 1136, "KPN B.V.", "NL"),
    Operator("telia", 3301, "Telia Company AB", "SE"),
    Operator("elisa", 719, "Elisa Oyj", "FI"),
    Operator("rostelecom", 12389, "PJSC Rostelecom", "RU"),
    Operator("kyivstar", 15895, "Kyivstar PJSC", "UA"),
    Operator("telstra", 1221, "Telstra Limited", "AU"),
    Operator("tpg", 7545, "TPG Telecom Limited", "AU"),
    Operator("spark", 4771, "Spark New Zealand Trading Ltd.", "NZ"),
    Operator("telkom_za", 37457, "Telkom SA Ltd.", "ZA"),
    Operator("mtn_ng", 29465, "MTN NIGERIA Communication limited", "NG"),
)

#: Foreign mobile carriers where Japanese travellers buy a local SIM or eSIM.
FOREIGN_CARRIERS: tuple[Operator, ...] = (
    Operator("skt", 9644, "SK Telecom", "KR"),
    Operator("twm", 24158, "Taiwan Mobile Co., Ltd.", "TW"),
    Operator("tmobile", 21928, "T-MOBILE-AS21928", "US"),
    Operator("ais", 131445, "Advanced Wireless Network Company Limited", "TH"),
    Operator("csl", 4760, "HKT Limited", "HK"),
    Operator("m1", 4773, "MobileOne Ltd.", "SG"),
    Operator("viettel_mobile", 7552, "Viettel Group", "VN"),
    Operator("cmcc", 9808, "China Mobile Communications Group Co., Ltd.", "CN"),
    Operator("globe", 132199, "Globe Telecom Inc.", "PH"),
    Operator("free_mobile", 51207, "Free Mobile SAS", "FR"),
    Operator("vodafone_uk", 25135, "Vodafone Limited", "GB"),
    Operator("telefonica_de", 6805, "Telefonica Germany GmbH & Co.OHG", "DE"),
    Operator("optus", 4804, "Optus Internet", "AU"),
)

#: Hosting providers and the cities of their data centres.
HOSTING: tuple[tuple[Operator, tuple[str, ...]], ...] = (
    (
        Operator("digitalocean", 14061, "DIGITALOCEAN-ASN", "US"),
        ("New York", "San Francisco", "Amsterdam", "Frankfurt", "London", "Singapore", "Toronto", "Sydney"),
    ),
    (
        Operator("aws", 16509, "AMAZON-02", "US"),
        ("Ashburn", "Tokyo", "Osaka", "Singapore", "Frankfurt", "Seoul", "Hong Kong", "Sao Paulo"),
    ),
    (
        Operator("vultr", 20473, "AS-CHOOPA", "US"),
        ("Tokyo", "Osaka", "Los Angeles", "Seattle", "Singapore", "Amsterdam", "Seoul"),
    ),
    (Operator("linode", 63949, "Akamai Connected Cloud", "US"), ("Tokyo", "Osaka", "Singapore", "Dallas")),
    (Operator("ovh", 16276, "OVH SAS", "FR"), ("Paris", "Frankfurt", "Singapore", "Sydney", "Toronto")),
    (Operator("hetzner", 24940, "Hetzner Online GmbH", "DE"), ("Nuremberg", "Helsinki", "Ashburn")),
    (
        Operator("alibaba", 45102, "Alibaba US Technology Co., Ltd.", "CN"),
        ("Tokyo", "Hong Kong", "Singapore", "Frankfurt", "Shanghai"),
    ),
    (
        Operator("tencent", 132203, "Tencent Building, Kejizhongyi Avenue", "CN"),
        ("Tokyo", "Hong Kong", "Seoul"),
    ),
    (Operator("gcp", 396982, "GOOGLE-CLOUD-PLATFORM", "US"), ("Tokyo", "Osaka", "Taipei", "Chicago")),
    (
        Operator("azure", 8075, "MICROSOFT-CORP-MSN-AS-BLOCK", "US"),
        ("Tokyo", "Osaka", "Hong Kong", "Singapore"),
    ),
    (Operator("contabo", 51167, "Contabo GmbH", "DE"), ("Nuremberg", "Singapore", "Tokyo")),
    (Operator("sakura", 9370, "SAKURA Internet Inc.", "JP"), ("Tokyo", "Osaka", "Sapporo")),
    (Operator("gmo", 7506, "GMO Internet Group, Inc.", "JP"), ("Tokyo",)),
    (Operator("idcf", 4694, "IDC Frontier Inc.", "JP"), ("Tokyo", "Kitakyushu")),
)

#: Commercial VPN providers: the AS their exits are announced from, and the exit cities.
VPN_PROVIDERS: tuple[tuple[str, Operator, tuple[str, ...]], ...] = (
    ("nordvpn", Operator("m247", 9009, "M247 Europe SRL", "RO"), ("Tokyo", "Osaka", "Los Angeles", "London")),
    (
        "expressvpn",
        Operator("datacamp", 60068, "Datacamp Limited", "GB"),
        ("Tokyo", "Singapore", "New York", "Hong Kong"),
    ),
    ("mullvad", Operator("mullvad", 39351, "31173 Services AB", "SE"), ("Tokyo", "Stockholm", "Frankfurt")),
    ("proton", Operator("proton", 62371, "Proton AG", "CH"), ("Tokyo", "Amsterdam", "Seattle")),
)

#: iCloud Private Relay egress operators.
RELAY_OPERATORS: tuple[Operator, ...] = (
    Operator("akamai_relay", 36183, "Akamai Technologies, Inc.", "US"),
    Operator("cloudflare", 13335, "CLOUDFLARENET", "US"),
    Operator("fastly", 54113, "FASTLY", "US"),
)

TOR_OPERATORS: tuple[tuple[Operator, str], ...] = (
    (Operator("ponynet", 53667, "FranTech Solutions", "US"), "Dallas"),
    (Operator("zwiebel", 60729, "Stiftung Erneuerbare Freiheit", "DE"), "Frankfurt"),
    (Operator("nforce", 43350, "NForce Entertainment B.V.", "NL"), "Amsterdam"),
    (Operator("privex", 210083, "Privex Inc.", "SE"), "Stockholm"),
)

#: Countries Japanese travellers visit, with weights (Honolulu dominates the US).
TRAVEL_COUNTRIES: dict[str, float] = {
    "KR": 20,
    "TW": 15,
    "US": 15,
    "TH": 8,
    "HK": 6,
    "SG": 6,
    "VN": 6,
    "CN": 5,
    "PH": 3,
    "FR": 4,
    "GB": 3,
    "DE": 3,
    "AU": 4,
}

# First octets the address plan hands out, Japanese and foreign space kept apart (as APNIC's is).
_JP_OCTETS = (36, 39, 42, 49, 58, 59, 60, 61, 101, 106, 110, 111, 112, 113, 114, 115, 116, 118, 119, 120)
_WORLD_OCTETS = (5, 23, 24, 31, 37, 45, 46, 50, 62, 64, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78)


class _Allocator:
    """Hands out aligned, non-overlapping networks from a list of /8s (IPv4) or a /12 (IPv6)."""

    def __init__(self, octets: tuple[int, ...], v6_base: str) -> None:
        self._octets = octets
        self._index = 0
        self._cursor = octets[0] << 24
        self._v6_cursor = int(ipaddress.IPv6Address(v6_base))

    def v4(self, prefix: int) -> ipaddress.IPv4Network:
        size = 1 << (32 - prefix)
        start = -(-self._cursor // size) * size
        if start + size > (self._octets[self._index] + 1) << 24:
            self._index += 1
            start = self._octets[self._index] << 24
        self._cursor = start + size
        return ipaddress.IPv4Network((start, prefix))

    def v6(self, prefix: int) -> ipaddress.IPv6Network:
        size = 1 << (128 - prefix)
        start = -(-self._v6_cursor // size) * size
        self._v6_cursor = start + size
        return ipaddress.IPv6Network((start, prefix))


@dataclass
class Block:
    """An address block and what the GeoIP databases say about it."""

    net: IPNetwork
    operator: Operator
    kind: str  # fixed, mobile, hosting, vpn, relay, tor
    country: str
    city: City | None  # where the City database locates the block (None: country only)
    accuracy_km: int
    hosting: bool = False
    anonymous_vpn: bool = False
    tor_exit: bool = False
    home_city: City | None = None  # where the block's users really are (fixed lines)

    @property
    def asn(self) -> int:
        return self.operator.asn

    @property
    def flagged(self) -> bool:
        """Whether the Anonymous-IP database lists the block."""
        return self.hosting or self.anonymous_vpn or self.tor_exit

    def host(self, rng: random.Random) -> str:
        """A random usable address of the block (a VPN exit's few servers share all its users)."""
        size = 33 if self.kind == "vpn" else self.net.num_addresses
        return str(self.net.network_address + rng.randrange(1, size - 1))

    def geo_network(self) -> GeoNetwork:
        """The block as :class:`authguard.testing.GeoNetwork`, for the database writer."""
        if self.city is None:
            lat, lon = JP_CENTROID if self.country == "JP" else _country_centre(self.country)
            city_name, tz = None, ("Asia/Tokyo" if self.country == "JP" else None)
        else:
            lat, lon, city_name, tz = self.city.lat, self.city.lon, self.city.name, self.city.tz
        return GeoNetwork(
            str(self.net),
            country=self.country,
            city=city_name,
            latitude=lat,
            longitude=lon,
            accuracy_km=self.accuracy_km,
            time_zone=tz,
            asn=self.operator.asn,
            as_org=self.operator.org,
            anonymous_vpn=self.anonymous_vpn,
            hosting=self.hosting,
            tor_exit=self.tor_exit,
        )


def _country_centre(country: str) -> tuple[float, float]:
    city = next(c for c in FOREIGN_CITIES if c.country == country)
    return city.lat, city.lon


@dataclass
class World:
    """Every network of the benchmark, indexed the ways the generator draws from them."""

    cities: dict[str, City]
    fixed: dict[tuple[str, str], list[Block]]  # (ISP, city) -> IPv4 DHCP pool blocks
    fixed_v6: dict[tuple[str, str], Block]  # (ISP, city) -> IPv6 block of the ISP's customers there
    mobile: dict[tuple[str, str], list[Block]]  # (carrier, point of presence) -> CGNAT blocks
    mobile_v6: dict[tuple[str, str], Block]
    foreign_fixed: dict[str, list[Block]]  # country -> residential blocks
    foreign_mobile: dict[str, list[Block]]
    hosting_jp: list[Block]
    hosting_foreign: list[Block]
    vpn_exits: dict[str, list[Block]]  # provider -> exit blocks
    relay: dict[str, list[Block]]  # Japanese point of presence or foreign country -> relay egress blocks
    tor: list[Block]
    proxy_ips: set[str] = field(default_factory=set)  # single residential-proxy addresses flagged

    def isps_in(self, city: City) -> list[Operator]:
        """The fixed-line ISPs selling in ``city``."""
        return [isp for isp in JP_FIXED_ISPS if not isp.regions or city.region in isp.regions]

    def blocks(self) -> Iterator[Block]:
        """Every block, each once."""
        for group in (self.fixed, self.mobile, self.foreign_fixed, self.foreign_mobile, self.vpn_exits):
            for blocks in group.values():
                yield from blocks
        for block in self.relay.values():
            yield from block
        yield from self.fixed_v6.values()
        yield from self.mobile_v6.values()
        yield from self.hosting_jp
        yield from self.hosting_foreign
        yield from self.tor

    def write_databases(self, folder: str | Path, *, anonymous: bool = True) -> Path:
        """Write the City, ASN and (unless ``anonymous`` is false) Anonymous-IP databases into ``folder``.

        Without ``anonymous``, an Anonymous-IP database left in ``folder`` by an earlier run is removed.
        """
        if not anonymous:
            (Path(folder) / ANONYMOUS_FILENAME).unlink(missing_ok=True)
        networks = [block.geo_network() for block in self.blocks()]
        networks += [
            GeoNetwork(f"{ip}/{128 if ':' in ip else 32}", residential_proxy=True)
            for ip in sorted(self.proxy_ips)
        ]
        return write_geoip_databases(folder, networks, anonymous=anonymous)


def build_world(rng: random.Random) -> World:
    """Lay out the benchmark's Internet; which blocks are mislocated or flagged depends on ``rng``."""
    jp = _Allocator(_JP_OCTETS, "2400:4000::")
    world_space = _Allocator(_WORLD_OCTETS, "2600:1000::")
    cities = {c.name: c for c in JP_CITIES + FOREIGN_CITIES}

    def jp_location(city: City) -> tuple[City | None, int]:
        roll = rng.random()
        if roll < 0.80:
            return city, rng.choice((5, 10, 20, 20, 50, 50, 100))
        if roll < 0.93:  # located at the region's big city, as MaxMind often does
            return cities[REGION_POP[city.region]], rng.choice((50, 100, 200))
        return None, rng.choice((500, 1000))

    fixed: dict[tuple[str, str], list[Block]] = {}
    fixed_v6: dict[tuple[str, str], Block] = {}
    for isp in JP_FIXED_ISPS:
        for city in JP_CITIES:
            if isp.regions and city.region not in isp.regions:
                continue
            pool = jp.v4(16)
            blocks = []
            for sub in pool.subnets(new_prefix=18):
                located, radius = jp_location(city)
                blocks.append(Block(sub, isp, "fixed", "JP", located, radius, home_city=city))
            fixed[(isp.key, city.name)] = blocks
            pop = cities[REGION_POP[city.region]]
            located6, radius6 = (city, 50) if rng.random() < 0.5 else (pop, rng.choice((100, 200, 500)))
            fixed_v6[(isp.key, city.name)] = Block(
                jp.v6(40), isp, "fixed", "JP", located6, radius6, home_city=city
            )

    mobile: dict[tuple[str, str], list[Block]] = {}
    mobile_v6: dict[tuple[str, str], Block] = {}
    for carrier in JP_CARRIERS:
        for pop_name in CARRIER_POPS[carrier.key]:
            pop = cities[pop_name]
            blocks = []
            for sub in jp.v4(16).subnets(new_prefix=18):
                roll = rng.random()
                if roll < 0.5:
                    located, radius = pop, rng.choice((100, 200, 500))
                elif roll < 0.75:
                    located, radius = cities["Tokyo"], rng.choice((200, 500, 1000))
                else:
                    located, radius = None, 1000
                blocks.append(Block(sub, carrier, "mobile", "JP", located, radius))
            mobile[(carrier.key, pop_name)] = blocks
            located6 = pop if rng.random() < 0.5 else None
            mobile_v6[(carrier.key, pop_name)] = Block(
                jp.v6(40), carrier, "mobile", "JP", located6, 500 if located6 else 1000
            )

    foreign_fixed: dict[str, list[Block]] = {}
    for isp in FOREIGN_ISPS:
        for city in (c for c in FOREIGN_CITIES if c.country == isp.country):
            for sub in world_space.v4(16).subnets(new_prefix=17):
                radius = rng.choice((10, 20, 50, 100, 200))
                foreign_fixed.setdefault(isp.country, []).append(
                    Block(sub, isp, "fixed", isp.country, city, radius, home_city=city)
                )
    foreign_mobile: dict[str, list[Block]] = {}
    for carrier in FOREIGN_CARRIERS:
        city = next(c for c in FOREIGN_CITIES if c.country == carrier.country)
        located = city if rng.random() < 0.6 else None
        foreign_mobile[carrier.country] = [
            Block(
                world_space.v4(17), carrier, "mobile", carrier.country, located, rng.choice((200, 500, 1000))
            )
        ]

    hosting_jp: list[Block] = []
    hosting_foreign: list[Block] = []
    for provider, locations in HOSTING:
        for name in locations:
            city = cities[name]
            space = jp if city.country == "JP" else world_space
            for sub in space.v4(20).subnets(new_prefix=21):
                block = Block(
                    sub,
                    provider,
                    "hosting",
                    city.country,
                    city,
                    rng.choice((20, 50, 100, 500, 1000)),
                    hosting=rng.random() < 0.7,  # coverage of real Anonymous-IP data is incomplete
                )
                (hosting_jp if city.country == "JP" else hosting_foreign).append(block)

    vpn_exits: dict[str, list[Block]] = {}
    for provider_key, operator, locations in VPN_PROVIDERS:
        for name in locations:
            city = cities[name]
            space = jp if city.country == "JP" else world_space
            vpn_exits.setdefault(provider_key, []).append(
                Block(
                    space.v4(24),
                    operator,
                    "vpn",
                    city.country,
                    city,
                    rng.choice((20, 100, 500)),
                    hosting=rng.random() < 0.5,
                    anonymous_vpn=rng.random() < 0.85,
                )
            )

    relay: dict[str, list[Block]] = {}
    for pop_name in sorted(set(REGION_POP.values())):
        for operator in RELAY_OPERATORS:
            relay.setdefault(pop_name, []).append(
                Block(
                    jp.v4(22),
                    operator,
                    "relay",
                    "JP",
                    cities[pop_name],
                    rng.choice((50, 100, 200)),
                    anonymous_vpn=rng.random() < 0.5,
                )
            )
    for country in TRAVEL_COUNTRIES:
        city = next(c for c in FOREIGN_CITIES if c.country == country)
        relay[country] = [
            Block(
                world_space.v4(22),
                RELAY_OPERATORS[1],
                "relay",
                country,
                city,
                200,
                anonymous_vpn=rng.random() < 0.5,
            )
        ]

    tor = [
        Block(world_space.v4(26), operator, "tor", cities[name].country, cities[name], 100, True, False, True)
        for operator, name in TOR_OPERATORS
    ]
    return World(
        cities,
        fixed,
        fixed_v6,
        mobile,
        mobile_v6,
        foreign_fixed,
        foreign_mobile,
        hosting_jp,
        hosting_foreign,
        vpn_exits,
        relay,
        tor,
    )
