from django.urls import path

from demo import views

urlpatterns = [
    path("", views.home, name="home"),
    path("refresh/", views.refresh, name="refresh"),
    path("logout/", views.sign_out, name="sign_out"),
    path("backchannel-logout/", views.backchannel_logout, name="backchannel_logout"),
]
