"""FOCUS 1.3 allowed values of the enumerated columns (focus_1_3_enums.md).

The official validator passes an allowed-value rule when any row is valid, so tests check
every row against these lists, and processors check the categories they are given.
"""

from __future__ import annotations

CHARGE_CATEGORY = ("Usage", "Purchase", "Tax", "Credit", "Adjustment")
CHARGE_CLASS = ("Correction",)  # or null
CHARGE_FREQUENCY = ("One-Time", "Recurring", "Usage-Based")
PRICING_CATEGORY = ("Standard", "Dynamic", "Committed", "Other")
COMMITMENT_DISCOUNT_STATUS = ("Used", "Unused")
COMMITMENT_DISCOUNT_CATEGORY = ("Spend", "Usage")

_SUBCATEGORIES = {
    "AI and Machine Learning": (
        "AI Platforms",
        "Bots",
        "Generative AI",
        "Machine Learning",
        "Natural Language Processing",
    ),
    "Analytics": (
        "Analytics Platforms",
        "Business Intelligence",
        "Data Processing",
        "Search",
        "Streaming Analytics",
    ),
    "Business Applications": ("Productivity and Collaboration",),
    "Compute": (
        "Containers",
        "End User Computing",
        "Quantum Compute",
        "Serverless Compute",
        "Virtual Machines",
    ),
    "Databases": (
        "Caching",
        "Data Warehouses",
        "Ledger Databases",
        "NoSQL Databases",
        "Relational Databases",
        "Time Series Databases",
    ),
    "Developer Tools": (
        "Developer Platforms",
        "Continuous Integration and Deployment",
        "Development Environments",
        "Source Code Management",
        "Quality Assurance",
    ),
    "Identity": ("Identity and Access Management",),
    "Integration": ("API Management", "Messaging", "Workflow Orchestration"),
    "Internet of Things": ("IoT Analytics", "IoT Platforms"),
    "Management and Governance": (
        "Architecture",
        "Compliance",
        "Cost Management",
        "Data Governance",
        "Disaster Recovery",
        "Endpoint Management",
        "Observability",
        "Support",
    ),
    "Media": ("Content Creation", "Gaming", "Media Streaming", "Mixed Reality"),
    "Migration": ("Data Migration", "Resource Migration"),
    "Mobile": (),
    "Multicloud": ("Multicloud Integration",),
    "Networking": (
        "Application Networking",
        "Content Delivery",
        "Network Connectivity",
        "Network Infrastructure",
        "Network Routing",
        "Network Security",
    ),
    "Security": (
        "Secret Management",
        "Security Posture Management",
        "Threat Detection and Response",
    ),
    "Storage": (
        "Backup Storage",
        "Block Storage",
        "File Storage",
        "Object Storage",
        "Storage Platforms",
    ),
    "Web": ("Application Platforms",),
    "Other": (),
}
# Every category also has "Other (<category>)".
SERVICE_SUBCATEGORY: dict[str, tuple[str, ...]] = {
    category: (*subs, f"Other ({category})") for category, subs in _SUBCATEGORIES.items()
}
SERVICE_CATEGORY = tuple(SERVICE_SUBCATEGORY)


def check_service_category(category: str, subcategory: str) -> None:
    """Raise ValueError unless `subcategory` is an allowed child of `category`."""
    if category not in SERVICE_SUBCATEGORY:
        raise ValueError(f"ServiceCategory {category!r} is not a FOCUS 1.3 value")
    if subcategory not in SERVICE_SUBCATEGORY[category]:
        raise ValueError(f"ServiceSubcategory {subcategory!r} is not allowed under {category!r}")
